"""Key pairs for NetSuite's M2M certificate mapping, for tests and the dev stack (never for production:
there an administrator makes the key and uploads the certificate)."""

from __future__ import annotations


def key_pair(common_name: str = "invoiceflow-m2m") -> tuple[str, str]:
    """A fresh RSA private key and its self-signed certificate (PEM), as an administrator would make with
    ``openssl req -x509 -newkey rsa:3072`` before uploading the certificate to the M2M setup page."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=730))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private, certificate.public_bytes(serialization.Encoding.PEM).decode()
