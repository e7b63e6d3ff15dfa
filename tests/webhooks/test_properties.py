"""Property: for random bodies and secrets, sign_* then verify_* succeeds; any single-bit flip fails."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.webhooks import SignatureError
from tests.webhooks.providers import BODY_SIGNED, LINEAR, NOW, Provider, Req, linear_body

secrets = st.text(min_size=1, max_size=64)


@st.composite
def body_and_bit(draw, p: Provider) -> tuple[bytes, int]:
    if p is LINEAR:
        # Linear's body must be JSON carrying webhookTimestamp; the random part is the data.
        body = linear_body(draw(st.text(max_size=200)))
    else:
        body = draw(st.binary(min_size=1, max_size=512))
    bit = draw(st.integers(min_value=0, max_value=len(body) * 8 - 1))
    return body, bit


@pytest.mark.parametrize("p", BODY_SIGNED, ids=[p.name for p in BODY_SIGNED])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), secret=secrets)
def test_sign_then_verify_and_any_bit_flip_fails(p: Provider, data, secret: str) -> None:
    body, bit = data.draw(body_and_bit(p))
    req = p.helper(body, secret)
    p.verify(req, secret)
    flipped = bytearray(body)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureError) as exc:
        p.verify(Req(req.headers, bytes(flipped), req.query, req.event), secret)
    assert exc.value.reason == "bad_signature"
    # the message does not depend on the secret (so it cannot carry it or a digest derived from it)
    with pytest.raises(SignatureError) as other:
        p.verify(Req(req.headers, bytes(flipped), req.query, req.event), secret + "-other")
    assert str(exc.value) == str(other.value)


@settings(max_examples=100, deadline=None)
@given(secret=secrets, other=secrets, body=st.binary(max_size=256))
def test_other_secret_never_verifies(secret: str, other: str, body: bytes) -> None:
    from api.webhooks import sign_generic, verify_generic

    if secret == other:
        return
    with pytest.raises(SignatureError):
        verify_generic(sign_generic(body, other, NOW), body, secret, now=NOW)


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=200))
def test_arbitrary_stripe_header_never_crashes(header: str) -> None:
    from api.webhooks import verify_stripe

    with pytest.raises(SignatureError) as exc:
        verify_stripe({"Stripe-Signature": header}, b"{}", "whsec_x", now=NOW)
    assert exc.value.reason in {"missing_header", "malformed_header", "bad_signature"}


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=200), ts=st.text(max_size=30))
def test_arbitrary_generic_and_hubspot_headers_never_crash(value: str, ts: str) -> None:
    from api.webhooks import verify_generic, verify_hubspot_v3

    headers = {
        "X-Invoiceflow-Timestamp": ts,
        "X-Invoiceflow-Signature": value,
        "X-HubSpot-Signature-v3": value,
        "X-HubSpot-Request-Timestamp": ts,
    }
    for call in (
        lambda: verify_generic(headers, b"{}", "k", now=NOW),
        lambda: verify_hubspot_v3(headers, b"{}", "k", method="POST", url="https://x/y", now=NOW),
    ):
        with pytest.raises(SignatureError):
            call()


def test_linear_property_body_is_valid_json() -> None:
    assert json.loads(linear_body("x"))["webhookTimestamp"] == int(NOW * 1000)
