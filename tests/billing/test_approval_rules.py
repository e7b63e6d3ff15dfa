"""Approval routing: first match wins, every condition counts, reasons explain the outcome."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.approval_rules import InvoiceFacts, parse_rule, route, rule_to_dict
from billing.errors import MoneyError

LARGE_NEW = {
    "name": "large-new-client",
    "match": {
        "min_amount": "10000.00",
        "new_client": True,
        "client_tags": ["enterprise"],
        "project_categories": ["fixed-scope"],
    },
    "steps": [
        {"approvers": ["pm@firm.example"], "mode": "any", "delegate": "cto@firm.example"},
        {"approvers": ["finance@firm.example", "cfo@firm.example"], "mode": "all"},
    ],
}
HUGE = {
    "name": "huge",
    "match": {"min_amount": "50000", "currency": "EUR"},
    "steps": [{"approvers": ["director@firm.example"]}],
}
ANY_NEW = {
    "name": "any-new-client",
    "match": {"new_client": True},
    "steps": [{"approvers": ["finance@firm.example"]}],
}


def facts(total: str = "12000.00", **kw: object) -> InvoiceFacts:
    values: dict[str, object] = {
        "total": Decimal(total),
        "currency": "EUR",
        "new_client": True,
        "client_tags": ("enterprise",),
        "project_category": "fixed-scope",
        "source": "api",
    }
    values.update(kw)
    return InvoiceFacts(**values)  # type: ignore[arg-type]


def test_first_matching_rule_wins_with_its_chain() -> None:
    rules = [parse_rule(HUGE), parse_rule(LARGE_NEW), parse_rule(ANY_NEW)]
    decision = route(rules, facts())
    assert decision.rule == "large-new-client"
    assert [(s.approvers, s.mode, s.delegate) for s in decision.steps] == [
        (("pm@firm.example",), "any", "cto@firm.example"),
        (("finance@firm.example", "cfo@firm.example"), "all", None),
    ]
    assert decision.reasons[0].startswith("huge: not matched (failed: total 12000.00 ≥ 50000")
    assert "new client" in decision.reasons[1] and "matched" in decision.reasons[1]
    assert route(rules, facts("60000")).rule == "huge"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"total": Decimal("9999.99")}, "any-new-client"),
        ({"client_tags": ("smb",)}, "any-new-client"),
        ({"project_category": "time-and-materials"}, "any-new-client"),
        ({"new_client": False}, None),
    ],
)
def test_every_condition_counts(change: dict[str, object], expected: str | None) -> None:
    decision = route([parse_rule(LARGE_NEW), parse_rule(ANY_NEW)], facts(**change))  # type: ignore[arg-type]
    assert decision.rule == expected
    assert decision.needs_approval is (expected is not None)
    if expected is None:
        assert decision.reasons[-1] == "no rule matched: no approval needed"


def test_disabled_rules_are_skipped_and_max_amount_is_exclusive() -> None:
    disabled = parse_rule({**ANY_NEW, "enabled": False})
    small = parse_rule(
        {"name": "small", "match": {"max_amount": "1000"}, "steps": [{"approvers": ["a@firm.example"]}]}
    )
    assert route([disabled], facts()).rule is None
    assert route([small], facts("999.99")).rule == "small"
    assert route([small], facts("1000.00")).rule is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({**ANY_NEW, "steps": []}, "one to ten steps"),
        ({**ANY_NEW, "steps": [{"approvers": ["not-an-email"]}]}, "not an email"),
        ({**ANY_NEW, "steps": [{"approvers": ["a@firm.example"], "mode": "most"}]}, "'any' or 'all'"),
        ({**ANY_NEW, "match": {"min_amount": 10.5}}, "float"),
        ({**ANY_NEW, "match": {"min_amount": "5", "max_amount": "5"}}, "below max_amount"),
        ({**ANY_NEW, "match": {"currency": "XYZ"}}, "XYZ"),
        ({**ANY_NEW, "match": {"colour": "red"}}, "unknown condition"),
        ({**ANY_NEW, "name": ""}, "name"),
        ({**ANY_NEW, "steps": [{"approvers": ["a@firm.example", "A@firm.example"]}]}, "twice"),
    ],
)
def test_invalid_rules_say_what_is_wrong(rule: dict[str, object], message: str) -> None:
    with pytest.raises(MoneyError, match=message):  # RuleError or the money error it wraps
        parse_rule(rule)


def test_round_trip_through_storage_form() -> None:
    for raw in (LARGE_NEW, HUGE, ANY_NEW):
        rule = parse_rule(raw)
        assert parse_rule(rule_to_dict(rule)) == rule
