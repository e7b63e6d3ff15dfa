"""A TLS-terminating proxy in front of the Temporal dev server, as a secured cluster or Temporal Cloud
looks to a client: TLS with ALPN ``h2``, optionally requiring a client certificate (mTLS). It forwards
bytes unchanged and reads the HTTP/2 request headers going by (with ``h2``), so a test can see the
metadata the client sent (``authorization: Bearer <api key>``). Certificates are made with
``cryptography``: a CA, the server's certificate, and client certificates signed by any CA given."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Pem:
    cert: Path
    key: Path
    _cert_obj: x509.Certificate | None = None
    _key_obj: ec.EllipticCurvePrivateKey | None = None


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pem:
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pem(cert_path, key_path, cert, key)


def make_ca(folder: Path, stem: str) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{stem} CA"))
        .issuer_name(_name(f"{stem} CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(folder, stem, cert, key)


def issue(folder: Path, stem: str, ca: Pem, *, server: bool) -> Pem:
    assert ca._cert_obj is not None and ca._key_obj is not None
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost" if server else stem))
        .issuer_name(ca._cert_obj.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca._cert_obj.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return _write(folder, stem, builder.sign(ca._key_obj, hashes.SHA256()), key)


@dataclass
class TlsProxy:
    """Listens on 127.0.0.1 (``.address``) and forwards to ``upstream`` ("host:port")."""

    upstream: str
    server: Pem
    client_ca: Pem | None = None  # set: client certificates signed by this CA are required (mTLS)
    headers: list[dict[str, str]] = field(default_factory=list)  # HTTP/2 request headers seen
    peers: list[str] = field(default_factory=list)  # client certificate subjects of accepted handshakes
    _server: asyncio.base_events.Server | None = None
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server.cert, self.server.key)
        context.set_alpn_protocols(["h2"])
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca.cert)
        return context

    async def start(self) -> TlsProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._context())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        if peer:
            self.peers.append(str(dict(x[0] for x in peer.get("subject", ()))))
        host, _, port = self.upstream.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        parser = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, validate_inbound_headers=False)
        )
        parser.initiate_connection()

        def watch(chunk: bytes) -> None:
            nonlocal parser
            if parser is None:
                return
            try:
                for event in parser.receive_data(chunk):
                    if isinstance(event, h2.events.RequestReceived):
                        self.headers.append(
                            {
                                (k.decode() if isinstance(k, bytes) else k): (
                                    v.decode() if isinstance(v, bytes) else v
                                )
                                for k, v in event.headers
                            }
                        )
                    elif isinstance(event, h2.events.DataReceived):
                        parser.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                parser.clear_outbound_data_buffer()
            except Exception:  # noqa: BLE001 - the parser only watches; forwarding goes on regardless
                parser = None

        await asyncio.gather(
            _pipe(reader, up_writer, watch), _pipe(up_reader, writer, None), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch) -> None:  # type: ignore[no-untyped-def]
    try:
        while chunk := await reader.read(65536):
            if watch is not None:
                watch(chunk)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass
