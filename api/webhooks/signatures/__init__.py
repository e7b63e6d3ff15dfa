"""Verification of inbound webhook signatures, one function per provider scheme.

Pure and stdlib-only (``hmac``, ``hashlib``, ``base64``, ``json``, ``re``): no I/O, no framework imports.
A receiver reads the **raw** request body (``await request.body()``) *before* any JSON parsing and calls
the provider's ``verify_*`` function with:

- ``headers``: any ``Mapping[str, str]``; header names are matched case-insensitively;
- ``body``: the raw body bytes exactly as received;
- ``secret``: one secret, or a sequence of secrets during rotation (success if any of them matches);
- ``now``: the current time in unix seconds, injected so that tests control the clock.

Every ``verify_*`` returns ``None`` on success and raises :class:`SignatureError` otherwise. Its
``reason`` is one of:

=====================  ==========================================================================
``missing_header``     a required header (or the PandaDoc ``signature`` query parameter) is absent
``malformed_header``   a header is present but cannot be parsed (not hex/base64, bad timestamp, ...)
``bad_signature``      well-formed but no secret produces it (also: wrong Basic-auth credentials)
``stale_timestamp``    the signed timestamp is outside the replay window, in the past *or* future
``missing_field``      a required body field is absent (Linear ``webhookTimestamp``, Dropbox Sign
                       ``event_hash`` / ``event_time`` / ``event_type``)
``malformed_body``     the body cannot be parsed where the scheme needs to read it (Linear)
=====================  ==========================================================================

Messages never contain a secret or an expected signature. A misconfiguration (no secret, an empty
secret) raises ``ValueError`` instead: that is a server error, not a bad request.

Signatures are checked before timestamps (as the Stripe and Linear SDKs do), so ``stale_timestamp``
is only reported for a request that was otherwise authentic. All digests are compared as decoded
bytes with :func:`hmac.compare_digest`.

Schemes (HMAC is always HMAC-SHA256 keyed with the UTF-8 secret):

=============  ===============================================  ==============================  ========
Provider       Header(s)                                        Signed message / encoding       Window
=============  ===============================================  ==============================  ========
HubSpot v3     ``X-HubSpot-Signature-v3``,                      ``method + uri + body + ts``,   300 s
               ``X-HubSpot-Request-Timestamp`` (unix **ms**)    base64
Pipedrive      ``Authorization: Basic base64(user:pass)``       (no signature; webhooks v2)     none
Jira           ``X-Hub-Signature: sha256=<hex>``                body, hex                       none
Linear         ``Linear-Signature: <hex>``                      body, hex; plus the body's      60 s
                                                                ``webhookTimestamp`` (unix ms)
GitHub         ``X-Hub-Signature-256: sha256=<hex>``            body, hex                       none
Asana          ``X-Hook-Signature: <hex>`` (handshake:          body, hex                       none
               ``X-Hook-Secret``, echoed back)
DocuSign       ``X-DocuSign-Signature-1`` .. ``-N``             body, base64; any header may    none
                                                                match any key
Dropbox Sign   body field ``event.event_hash``                  ``event_time + event_type``,    none
                                                                hex, keyed by the API key
PandaDoc       query parameter ``?signature=<hex>``             body, hex                       none
Stripe         ``Stripe-Signature: t=<s>,v1=<hex>[,v1=...]``    ``f"{t}." + body``, hex         300 s
Invoiceflow    ``X-Invoiceflow-Timestamp``,                     ``f"{ts}." + body``, hex        300 s
(generic)      ``X-Invoiceflow-Signature: v1=<hex>``
=============  ===============================================  ==============================  ========

Generic scheme (``verify_generic`` / ``sign_generic``), for any tool without its own scheme
-----------------------------------------------------------------------------------------------

The sender shares a secret with us and adds two headers to each POST::

    X-Invoiceflow-Timestamp: <unix seconds, decimal digits>
    X-Invoiceflow-Signature: v1=<hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body))>

- The signed message is the timestamp header's exact text, one ``.`` and the raw body bytes.
- The hex digest is lowercase (uppercase is accepted). During secret rotation the sender may send
  several comma-separated entries, ``v1=<hex>,v1=<hex>``; one matching entry suffices. Entries with
  another version prefix are ignored.
- The receiver rejects a timestamp more than 300 s away from its clock, in either direction.

Example (Python)::

    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Invoiceflow-Timestamp": ts, "X-Invoiceflow-Signature": f"v1={sig}"}

Each HMAC scheme has a ``sign_*`` counterpart that builds what the provider sends (headers, or the
value the provider puts elsewhere), for tests, the demo command and the benchmark. ``sign_*`` take a
``timestamp`` in unix seconds where the scheme has one (HubSpot's is converted to milliseconds).

One module per family of schemes (``common`` holds the constant-time helpers); this package
re-exports them all.
"""

from api.webhooks.signatures.common import (
    Secret,
    SignatureError,
)
from api.webhooks.signatures.crm import (
    HUBSPOT_SIGNATURE_HEADER,
    HUBSPOT_TIMESTAMP_HEADER,
    hubspot_v3_signed_uri,
    sign_hubspot_v3,
    sign_pipedrive_basic_auth,
    verify_hubspot_v3,
    verify_pipedrive_basic_auth,
)
from api.webhooks.signatures.esign import (
    sign_docusign,
    sign_dropbox_sign,
    verify_docusign,
    verify_dropbox_sign,
)
from api.webhooks.signatures.payments import (
    GENERIC_SIGNATURE_HEADER,
    GENERIC_TIMESTAMP_HEADER,
    sign_generic,
    sign_stripe,
    verify_generic,
    verify_stripe,
)
from api.webhooks.signatures.tools import (
    LINEAR_SIGNATURE_HEADER,
    LINEAR_TIMESTAMP_FIELD,
    asana_handshake_response,
    sign_asana,
    sign_github,
    sign_jira,
    sign_linear,
    sign_pandadoc,
    verify_asana,
    verify_github,
    verify_jira,
    verify_linear,
    verify_pandadoc,
)

__all__ = [
    "GENERIC_SIGNATURE_HEADER",
    "GENERIC_TIMESTAMP_HEADER",
    "HUBSPOT_SIGNATURE_HEADER",
    "HUBSPOT_TIMESTAMP_HEADER",
    "LINEAR_SIGNATURE_HEADER",
    "LINEAR_TIMESTAMP_FIELD",
    "Secret",
    "SignatureError",
    "asana_handshake_response",
    "hubspot_v3_signed_uri",
    "sign_asana",
    "sign_docusign",
    "sign_dropbox_sign",
    "sign_generic",
    "sign_github",
    "sign_hubspot_v3",
    "sign_jira",
    "sign_linear",
    "sign_pandadoc",
    "sign_pipedrive_basic_auth",
    "sign_stripe",
    "verify_asana",
    "verify_docusign",
    "verify_dropbox_sign",
    "verify_generic",
    "verify_github",
    "verify_hubspot_v3",
    "verify_jira",
    "verify_linear",
    "verify_pandadoc",
    "verify_pipedrive_basic_auth",
    "verify_stripe",
]
