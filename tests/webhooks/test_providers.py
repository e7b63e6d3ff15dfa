"""Provider-specific rules: replay windows, malformed headers, rotation headers, handshakes."""

from __future__ import annotations

import base64
import json

import pytest

from api.webhooks import SignatureError
from api.webhooks import signatures as sig
from tests.webhooks.providers import (
    GENERIC,
    HUBSPOT,
    HUBSPOT_URL,
    LINEAR,
    NOW,
    STRIPE,
    Req,
    dropbox_event,
    generic_sign,
    hmac_b64,
    hmac_hex,
    hubspot_sign,
    linear_body,
    stripe_sign,
)

S = "s3cret-value"
BODY = b'{"id":"evt_1","object":"event"}'


def reason(fn, *args, **kwargs) -> str:
    with pytest.raises(SignatureError) as exc:
        fn(*args, **kwargs)
    assert S not in str(exc.value)
    return exc.value.reason


# --- replay windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, verify, tolerance, scale",
    [
        (lambda t: hubspot_sign(BODY, S, ts_ms=int(t * 1000)), HUBSPOT.verify, 300, 1),
        (lambda t: stripe_sign(BODY, S, t=int(t)), STRIPE.verify, 300, 1),
        (lambda t: generic_sign(BODY, S, t=int(t)), GENERIC.verify, 300, 1),
        (lambda t: LINEAR.sign(linear_body(ts_ms=int(t * 1000)), S), LINEAR.verify, 60, 1),
    ],
    ids=["hubspot", "stripe", "generic", "linear"],
)
def test_replay_window(make, verify, tolerance, scale) -> None:
    verify(make(NOW), S)
    verify(make(NOW - tolerance + 1), S)
    verify(make(NOW + tolerance - 1), S)
    assert reason(verify, make(NOW - tolerance - 1), S) == "stale_timestamp"
    assert reason(verify, make(NOW - 86_400), S) == "stale_timestamp"
    assert reason(verify, make(NOW + tolerance + 1), S) == "stale_timestamp"
    assert reason(verify, make(NOW + 10 * 365 * 86_400), S) == "stale_timestamp"  # far future


def test_custom_tolerance_is_honoured() -> None:
    req = stripe_sign(BODY, S, t=int(NOW) - 500)
    sig.verify_stripe(req.headers, BODY, S, now=NOW, tolerance=600)
    assert reason(sig.verify_stripe, req.headers, BODY, S, now=NOW, tolerance=300) == "stale_timestamp"
    req = LINEAR.sign(linear_body(ts_ms=int(NOW * 1000) - 90_000), S)
    sig.verify_linear(req.headers, req.body, S, now=NOW, tolerance=120)


def test_timestamp_is_covered_by_the_signature() -> None:
    """Moving the timestamp forward to pass the window breaks the signature."""
    old = stripe_sign(BODY, S, t=int(NOW) - 1000)
    v1 = old.headers["Stripe-Signature"].split(",v1=")[1]
    assert (
        reason(STRIPE.verify, Req({"Stripe-Signature": f"t={int(NOW)},v1={v1}"}, BODY), S) == "bad_signature"
    )
    old = generic_sign(BODY, S, t=int(NOW) - 1000)
    headers = {**old.headers, "X-Invoiceflow-Timestamp": str(int(NOW))}
    assert reason(GENERIC.verify, Req(headers, BODY), S) == "bad_signature"
    old = hubspot_sign(BODY, S, ts_ms=int(NOW * 1000) - 1_000_000)
    headers = {**old.headers, "X-HubSpot-Request-Timestamp": str(int(NOW * 1000))}
    assert reason(HUBSPOT.verify, Req(headers, BODY), S) == "bad_signature"


# --- HubSpot ---------------------------------------------------------------------------------------------


def test_hubspot_signs_method_and_url() -> None:
    req = hubspot_sign(BODY, S)
    assert reason(sig.verify_hubspot_v3, req.headers, BODY, S, method="PUT", url=HUBSPOT_URL, now=NOW) == (
        "bad_signature"
    )
    other_url = HUBSPOT_URL.replace("acme", "evil")
    assert reason(sig.verify_hubspot_v3, req.headers, BODY, S, method="POST", url=other_url, now=NOW) == (
        "bad_signature"
    )
    # the method is compared case-insensitively (frameworks give "POST")
    sig.verify_hubspot_v3(req.headers, BODY, S, method="post", url=HUBSPOT_URL, now=NOW)


def test_hubspot_uri_decoding() -> None:
    assert sig.hubspot_v3_signed_uri("https://h.example/p?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20") == (
        "https://h.example/p?a=:/?@!$'()*,;&b=%20"
    )
    # a sender that signed the URL without decoding is accepted too
    ts = str(int(NOW * 1000))
    raw = hmac_b64(S, b"POST" + HUBSPOT_URL.encode() + BODY + ts.encode())
    headers = {"X-HubSpot-Signature-v3": raw, "X-HubSpot-Request-Timestamp": ts}
    sig.verify_hubspot_v3(headers, BODY, S, method="POST", url=HUBSPOT_URL, now=NOW)


def test_hubspot_timestamp_is_milliseconds() -> None:
    req = hubspot_sign(BODY, S, ts_ms=int(NOW))  # seconds sent where ms are expected: 1970
    assert reason(HUBSPOT.verify, req, S) == "stale_timestamp"
    helper = sig.sign_hubspot_v3(BODY, S, method="POST", url=HUBSPOT_URL, timestamp=NOW)
    assert helper["X-HubSpot-Request-Timestamp"] == str(int(NOW * 1000))


@pytest.mark.parametrize(
    "headers",
    [
        {"X-HubSpot-Signature-v3": "not base64!!", "X-HubSpot-Request-Timestamp": str(int(NOW * 1000))},
        {"X-HubSpot-Signature-v3": base64.b64encode(b"short").decode(), "X-HubSpot-Request-Timestamp": "1"},
        {"X-HubSpot-Signature-v3": hmac_b64(S, b"x"), "X-HubSpot-Request-Timestamp": "soon"},
        {"X-HubSpot-Signature-v3": hmac_b64(S, b"x"), "X-HubSpot-Request-Timestamp": "-5"},
        {"X-HubSpot-Signature-v3": hmac_b64(S, b"x"), "X-HubSpot-Request-Timestamp": "9" * 5000},
    ],
)
def test_hubspot_malformed(headers) -> None:
    assert reason(HUBSPOT.verify, Req(headers, BODY), S) == "malformed_header"


# --- Stripe ------------------------------------------------------------------------------------------------


def v1(secret: str, t: int = int(NOW), body: bytes = BODY) -> str:
    return hmac_hex(secret, f"{t}.".encode() + body)


@pytest.mark.parametrize(
    "header, expected",
    [
        ("garbage", "malformed_header"),
        ("", "missing_header"),
        ("t=,v1=abc", "malformed_header"),
        ("t=later,v1=" + "0" * 64, "malformed_header"),
        (f"t={int(NOW)}", "malformed_header"),
        (f"t={int(NOW)},v0={'0' * 64}", "malformed_header"),
        (f"t={int(NOW)},t={int(NOW)},v1={'0' * 64}", "malformed_header"),
        (f"t={int(NOW)},v1=zz", "bad_signature"),
        (f"t={int(NOW)},v1={'0' * 64}", "bad_signature"),
        (",,,=,==", "malformed_header"),
    ],
)
def test_stripe_malformed(header: str, expected: str) -> None:
    assert reason(STRIPE.verify, Req({"Stripe-Signature": header}, BODY), S) == expected


def test_stripe_any_v1_matches_and_others_are_ignored() -> None:
    t = int(NOW)
    header = f"t={t},v1={v1('old-secret')},v1={v1(S)},v0={'1' * 64},v2=whatever"
    sig.verify_stripe({"stripe-signature": header}, BODY, S, now=NOW)
    header = f"t={t}, v1={v1(S).upper()}"  # whitespace and upper-case hex
    sig.verify_stripe({"Stripe-Signature": header}, BODY, S, now=NOW)


def test_stripe_helper_emits_one_v1_per_secret() -> None:
    header = sig.sign_stripe(BODY, ["whsec_a", "whsec_b"], NOW)["Stripe-Signature"]
    assert header == f"t={int(NOW)},v1={v1('whsec_a')},v1={v1('whsec_b')}"
    sig.verify_stripe({"Stripe-Signature": header}, BODY, "whsec_b", now=NOW)


# --- generic ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ts, value, expected",
    [
        (str(int(NOW)), "garbage", "malformed_header"),
        (str(int(NOW)), "v1=zz", "malformed_header"),
        (str(int(NOW)), "v2=" + "0" * 64, "malformed_header"),
        ("1.5", "v1=" + "0" * 64, "malformed_header"),
        (str(int(NOW)), "v1=" + "0" * 64, "bad_signature"),
    ],
)
def test_generic_malformed(ts: str, value: str, expected: str) -> None:
    headers = {"X-Invoiceflow-Timestamp": ts, "X-Invoiceflow-Signature": value}
    assert reason(GENERIC.verify, Req(headers, BODY), S) == expected


def test_generic_accepts_several_v1_entries() -> None:
    ts = str(int(NOW))
    mac = hmac_hex(S, f"{ts}.".encode() + BODY)
    headers = {"X-Invoiceflow-Timestamp": ts, "X-Invoiceflow-Signature": f"v1={'0' * 64}, v1={mac}"}
    sig.verify_generic(headers, BODY, S, now=NOW)
    assert sig.sign_generic(BODY, S, NOW) == {
        "X-Invoiceflow-Timestamp": ts,
        "X-Invoiceflow-Signature": f"v1={mac}",
    }


# --- hex-of-body schemes
# --------------------------------------------------------------------------------------


def test_github_documented_test_vector() -> None:
    # GitHub's docs ("Validating webhook deliveries", testing section) give this secret/payload/signature.
    headers = {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    }
    sig.verify_github(headers, b"Hello, World!", "It's a Secret to Everybody")
    assert (
        sig.sign_github(b"Hello, World!", "It's a Secret to Everybody")["X-Hub-Signature-256"]
        == (headers["X-Hub-Signature-256"])
    )


@pytest.mark.parametrize(
    "verify, header",
    [(sig.verify_github, "X-Hub-Signature-256"), (sig.verify_jira, "X-Hub-Signature")],
    ids=["github", "jira"],
)
@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "sha256=nothex",
        "sha256=" + "a" * 63,
        "sha1=" + "a" * 40,
        "md5=" + "a" * 64,
        "=" + "a" * 64,
        "sha256=" + "ab " * 32,
    ],
)
def test_prefixed_hex_malformed(verify, header: str, value: str) -> None:
    assert reason(verify, {header: value}, BODY, S) == "malformed_header"


def test_prefixed_hex_accepts_uppercase() -> None:
    sig.verify_github({"X-Hub-Signature-256": "SHA256=" + hmac_hex(S, BODY).upper()}, BODY, S)


def test_github_ignores_legacy_sha1_header() -> None:
    headers = {"X-Hub-Signature": "sha1=" + "0" * 40}
    assert reason(sig.verify_github, headers, BODY, S) == "missing_header"


@pytest.mark.parametrize("value", ["nothex", "a" * 63, "sha256=" + hmac_hex(S, BODY)])
def test_plain_hex_malformed(value: str) -> None:
    assert reason(sig.verify_asana, {"X-Hook-Signature": value}, BODY, S) == "malformed_header"
    body = linear_body()
    assert reason(sig.verify_linear, {"Linear-Signature": value}, body, S, now=NOW) == "malformed_header"
    assert reason(sig.verify_pandadoc, value, BODY, S) == "malformed_header"


def test_asana_handshake() -> None:
    assert sig.asana_handshake_response({"x-hook-secret": "b537207f"}) == {"X-Hook-Secret": "b537207f"}
    assert sig.asana_handshake_response({"X-Hook-Secret": "abc", "Content-Type": "x"}) == {
        "X-Hook-Secret": "abc"
    }
    assert sig.asana_handshake_response({"X-Hook-Signature": "abc"}) is None
    assert sig.asana_handshake_response({"X-Hook-Secret": ""}) is None
    # the handshake secret then verifies events, including the empty heartbeat
    body = b'{"events":[]}'
    sig.verify_asana({"X-Hook-Signature": hmac_hex("b537207f", body)}, body, "b537207f")


def test_linear_body_rules() -> None:
    def signed(body: bytes) -> dict[str, str]:
        return {"Linear-Signature": hmac_hex(S, body)}

    for body in (b"not json", b"\xff\xfe"):
        assert reason(sig.verify_linear, signed(body), body, S, now=NOW) == "malformed_body"
    body = json.dumps({"action": "update"}).encode()
    assert reason(sig.verify_linear, signed(body), body, S, now=NOW) == "missing_field"
    body = b"[1, 2]"
    assert reason(sig.verify_linear, signed(body), body, S, now=NOW) == "missing_field"
    for ts in ("1718035200000", True, None):
        body = json.dumps({"webhookTimestamp": ts}).encode()
        assert reason(sig.verify_linear, signed(body), body, S, now=NOW) == "malformed_body"
    # an unsigned body is never parsed: bad signature comes first
    assert (
        reason(sig.verify_linear, {"Linear-Signature": "0" * 64}, b"not json", S, now=NOW) == "bad_signature"
    )


def test_pandadoc_header_fallback() -> None:
    mac = hmac_hex(S, BODY)
    sig.verify_pandadoc(None, BODY, S, headers={"x-pd-signature": mac})
    # the query parameter wins when both are present
    assert reason(sig.verify_pandadoc, "0" * 64, BODY, S, headers={"X-PD-Signature": mac}) == "bad_signature"
    assert reason(sig.verify_pandadoc, None, BODY, S, headers={}) == "missing_header"


# --- DocuSign
# -------------------------------------------------------------------------------------------------


def test_docusign_any_numbered_header_any_key() -> None:
    headers = {
        "X-DocuSign-Signature-1": hmac_b64("key-one", BODY),
        "X-DocuSign-Signature-2": hmac_b64("key-two", BODY),
    }
    sig.verify_docusign(headers, BODY, "key-two")
    sig.verify_docusign(headers, BODY, ["key-three", "key-one"])
    assert reason(sig.verify_docusign, headers, BODY, "key-three") == "bad_signature"
    only_second = {"x-docusign-signature-2": hmac_b64(S, BODY)}
    sig.verify_docusign(only_second, BODY, S)
    assert sig.sign_docusign(BODY, ["key-one", "key-two"]) == {
        "X-Authorization-Digest": "HMACSHA256",
        **headers,
    }


def test_docusign_malformed() -> None:
    assert reason(sig.verify_docusign, {"X-DocuSign-Signature-1": "***"}, BODY, S) == "malformed_header"
    assert (
        reason(sig.verify_docusign, {"X-DocuSign-Signature": hmac_b64(S, BODY)}, BODY, S) == "missing_header"
    )
    # one malformed header does not hide a valid one
    headers = {"X-DocuSign-Signature-1": "***", "X-DocuSign-Signature-2": hmac_b64(S, BODY)}
    sig.verify_docusign(headers, BODY, S)


# --- Dropbox Sign
# ---------------------------------------------------------------------------------------------


def test_dropbox_sign_documented_construction() -> None:
    payload = dropbox_event(b"signature_request_all_signed", "api-key")
    sig.verify_dropbox_sign(payload, "api-key")  # whole payload
    sig.verify_dropbox_sign(payload["event"], "api-key")  # or its event object
    event = dict(payload["event"], event_time=1525470811)  # an integer event_time signs the same text
    sig.verify_dropbox_sign(event, "api-key")
    tampered = dict(payload["event"], event_type="signature_request_signed")
    assert reason(sig.verify_dropbox_sign, tampered, "api-key") == "bad_signature"
    tampered = dict(payload["event"], event_time="1525470812")
    assert reason(sig.verify_dropbox_sign, tampered, "api-key") == "bad_signature"
    assert sig.sign_dropbox_sign("1525470811", "callback_test", "k") == hmac_hex(
        "k", b"1525470811callback_test"
    )


@pytest.mark.parametrize(
    "drop, expected",
    [("event_hash", "missing_field"), ("event_time", "missing_field"), ("event_type", "missing_field")],
)
def test_dropbox_sign_missing_fields(drop: str, expected: str) -> None:
    event = dict(dropbox_event(b"callback_test", S)["event"])
    del event[drop]
    assert reason(sig.verify_dropbox_sign, event, S) == expected
    assert reason(sig.verify_dropbox_sign, {"event": "nope"}, S) == "missing_field"


def test_dropbox_sign_malformed_hash() -> None:
    event = dict(dropbox_event(b"callback_test", S)["event"], event_hash="xyz")
    assert reason(sig.verify_dropbox_sign, event, S) == "malformed_header"


# --- Pipedrive
# ------------------------------------------------------------------------------------------------


def basic(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


def test_pipedrive_credentials() -> None:
    sig.verify_pipedrive_basic_auth(basic("user:pa:ss"), username="user", password="pa:ss")
    sig.verify_pipedrive_basic_auth(
        {"authorization": basic("user:pw")["Authorization"].replace("Basic", "basic")},
        username="user",
        password=["old", "pw"],
    )
    assert reason(sig.verify_pipedrive_basic_auth, basic("other:pw"), username="user", password="pw") == (
        "bad_signature"
    )
    assert (
        reason(sig.verify_pipedrive_basic_auth, basic("user:"), username="user", password="pw")
        == "bad_signature"
    )
    assert sig.sign_pipedrive_basic_auth("user", "pw") == basic("user:pw")


@pytest.mark.parametrize(
    "value",
    [
        "Bearer abc",
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"nocolon").decode(),
        "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
        "garbage",
    ],
)
def test_pipedrive_malformed(value: str) -> None:
    assert reason(sig.verify_pipedrive_basic_auth, {"Authorization": value}, username="u", password="p") == (
        "malformed_header"
    )


# --- configuration and error type --------------------------------------------------------------------------


def test_bytes_secret_is_rejected() -> None:
    with pytest.raises(TypeError):
        sig.verify_github({"X-Hub-Signature-256": "sha256=" + "0" * 64}, BODY, b"bytes")  # type: ignore[arg-type]


def test_signature_error_shape() -> None:
    err = SignatureError("bad_signature", "GitHub signature does not match")
    assert err.reason == "bad_signature" and str(err) == "GitHub signature does not match"
    assert isinstance(err, Exception)
