"""The same contract checked for every provider, against requests signed independently from the spec."""

from __future__ import annotations

import pytest

from api.webhooks import SignatureError
from tests.webhooks.providers import ALL, BODY_SIGNED, PANDADOC, Provider, Req, sample_body

SECRET = "whsec_correct-horse-battery-staple"
OTHER = "whsec_not-the-right-one"

ids = [p.name for p in ALL]


def flip_byte(body: bytes, index: int = 5) -> bytes:
    b = bytearray(body)
    b[index] ^= 0x01
    return bytes(b)


def assert_no_leak(err: SignatureError, p: Provider, body: bytes) -> None:
    text = str(err) + repr(err)
    assert SECRET not in text and OTHER not in text
    for digest in p.digests(body, SECRET) + p.digests(body, OTHER):
        assert digest not in text


@pytest.mark.parametrize("p", ALL, ids=ids)
def test_independently_signed_request_verifies(p: Provider) -> None:
    body = sample_body(p)
    assert p.verify(p.sign(body, SECRET), SECRET) is None


@pytest.mark.parametrize("p", ALL, ids=ids)
def test_sign_helper_round_trips_and_matches_spec(p: Provider) -> None:
    body = sample_body(p)
    p.verify(p.helper(body, SECRET), SECRET)
    spec = p.sign(body, SECRET)
    helper = p.helper(body, SECRET)
    for name, value in spec.headers.items():
        if name in helper.headers:
            assert helper.headers[name] == value, name
    assert helper.query == spec.query
    if spec.event is not None:
        assert helper.event["event"]["event_hash"] == spec.event["event"]["event_hash"]


@pytest.mark.parametrize("p", ALL, ids=ids)
def test_wrong_secret_is_bad_signature(p: Provider) -> None:
    body = sample_body(p)
    with pytest.raises(SignatureError) as exc:
        p.verify(p.sign(body, OTHER), SECRET)
    assert exc.value.reason == "bad_signature"
    assert_no_leak(exc.value, p, body)


@pytest.mark.parametrize("p", BODY_SIGNED, ids=[p.name for p in BODY_SIGNED])
@pytest.mark.parametrize("index", [0, 5, -1])
def test_one_changed_body_byte_is_bad_signature(p: Provider, index: int) -> None:
    body = sample_body(p)
    req = p.sign(body, SECRET)
    tampered = Req(req.headers, flip_byte(body, index), req.query, req.event)
    with pytest.raises(SignatureError) as exc:
        p.verify(tampered, SECRET)
    assert exc.value.reason == "bad_signature"
    assert_no_leak(exc.value, p, body)


@pytest.mark.parametrize(
    "p, header",
    [(p, h) for p in ALL for h in p.required],
    ids=[f"{p.name}-{h}" for p in ALL for h in p.required],
)
def test_missing_header(p: Provider, header: str) -> None:
    body = sample_body(p)
    req = p.sign(body, SECRET)
    for headers in (
        {k: v for k, v in req.headers.items() if k != header},
        {**req.headers, header: ""},
    ):
        with pytest.raises(SignatureError) as exc:
            p.verify(Req(headers, body, req.query, req.event), SECRET)
        assert exc.value.reason == "missing_header"
        assert_no_leak(exc.value, p, body)


def test_missing_pandadoc_query_signature() -> None:
    body = sample_body(PANDADOC)
    for query in (None, ""):
        with pytest.raises(SignatureError) as exc:
            PANDADOC.verify(Req({}, body, query=query), SECRET)
        assert exc.value.reason == "missing_header"


@pytest.mark.parametrize("p", [p for p in ALL if p.required], ids=[p.name for p in ALL if p.required])
@pytest.mark.parametrize("case", [str.lower, str.upper, str.swapcase])
def test_header_names_are_case_insensitive(p: Provider, case) -> None:
    body = sample_body(p)
    req = p.sign(body, SECRET)
    p.verify(Req({case(k): v for k, v in req.headers.items()}, body, req.query, req.event), SECRET)


@pytest.mark.parametrize("p", ALL, ids=ids)
def test_secret_rotation_any_secret_matches(p: Provider) -> None:
    body = sample_body(p)
    p.verify(p.sign(body, SECRET), [OTHER, SECRET])
    p.verify(p.sign(body, SECRET), (SECRET, OTHER))
    with pytest.raises(SignatureError) as exc:
        p.verify(p.sign(body, SECRET), [OTHER, "third"])
    assert exc.value.reason == "bad_signature"


@pytest.mark.parametrize("p", ALL, ids=ids)
@pytest.mark.parametrize("bad", ["", [], [""]])
def test_missing_secret_configuration_fails_closed(p: Provider, bad) -> None:
    body = sample_body(p)
    with pytest.raises(ValueError):
        p.verify(p.sign(body, SECRET), bad)
