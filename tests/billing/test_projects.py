"""Project plans: contract value, percent milestones, deposit recoupment in any event order."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.errors import MoneyError
from billing.projects import DepositSpec, MilestoneSpec, deposit_to_bill, recoupment, resolve_plan

D = Decimal


def test_the_issue_example_contract_is_the_milestones_and_the_deposit_is_30_percent_of_it() -> None:
    plan = resolve_plan(
        "USD", [MilestoneSpec("m1", "Design sign-off", amount=D("4000.00"))], DepositSpec(percent=D("30"))
    )
    assert plan == type(plan)(contract=D("4000.00"), deposit=D("1200.00"), milestones={"m1": D("4000.00")})


def test_percent_milestones_round_half_up_and_need_a_contract_amount() -> None:
    plan = resolve_plan(
        "USD",
        [MilestoneSpec("a", "A", percent=D("33.333")), MilestoneSpec("b", "B", percent=D("66.667"))],
        contract_amount=D("1000.05"),
    )
    # 1000.05 × 33.333 % = 333.3466... → 333.35; × 66.667 % = 666.7033... → 666.70
    assert plan.milestones == {"a": D("333.35"), "b": D("666.70")}
    with pytest.raises(
        MoneyError, match=r"milestones\[0\].percent: a percent milestone needs contract_amount"
    ):
        resolve_plan("USD", [MilestoneSpec("a", "A", percent=D("50"))])


@pytest.mark.parametrize(
    ("milestones", "deposit", "contract", "message"),
    [
        (
            [MilestoneSpec("a", "A", amount=D("10")), MilestoneSpec("a", "B", amount=D("5"))],
            None,
            None,
            "keys must be unique",
        ),
        (
            [MilestoneSpec("a", "A", amount=D("10"), percent=D("5"))],
            None,
            None,
            "exactly one of amount or percent",
        ),
        ([MilestoneSpec("a", "A", amount=D("10.001"))], None, None, r"milestones\[0\].amount"),
        ([MilestoneSpec("a", "A", amount=D("600"))], None, D("500"), "more than the contract"),
        (
            [MilestoneSpec("a", "A", amount=D("100"))],
            DepositSpec(amount=D("150")),
            None,
            "more than the milestones",
        ),
        ([MilestoneSpec("a", "A", amount=D("100"))], DepositSpec(percent=D("120")), None, "deposit.percent"),
        ([MilestoneSpec("a", "A", amount="100.5")], None, None, None),
    ],
)
def test_inconsistent_plans_name_the_field(milestones, deposit, contract, message) -> None:  # type: ignore[no-untyped-def]
    if message is None:
        assert resolve_plan("USD", milestones, deposit, contract).contract == D("100.50")
        return
    with pytest.raises(MoneyError, match=message):
        resolve_plan("USD", milestones, deposit, contract)


def test_yen_has_no_minor_units() -> None:
    plan = resolve_plan("JPY", [MilestoneSpec("a", "A", amount=D("100001"))], DepositSpec(percent=D("33")))
    assert plan.deposit == D("33000")  # 33000.33 rounded to whole yen


def _bill(
    milestones: dict[str, Decimal], deposit: Decimal, order: list[str]
) -> tuple[Decimal, dict[str, Decimal]]:
    """Simulate events in ``order`` ("deposit" or a milestone key); returns deposit billed and the
    deduction on each milestone invoice, the way persistence.projects.bill_trigger applies the rules."""
    pending = dict(milestones)
    billed_deposit, recouped, deductions = D(0), D(0), {}
    for step in order:
        if step == "deposit":
            billed_deposit = deposit_to_bill(deposit, sum(pending.values(), D(0)))
            continue
        amount = pending[step]
        take = recoupment(
            currency="USD",
            milestone_amount=amount,
            deposit_billed=billed_deposit,
            deposit_recouped=recouped,
            unbilled_milestones=sum(pending.values(), D(0)),
            is_last=len(pending) == 1,
        )
        recouped += take
        deductions[step] = take
        del pending[step]
    return billed_deposit, deductions


def test_deposit_before_milestones_is_recouped_pro_rata_and_exactly() -> None:
    milestones = {"a": D("1000.00"), "b": D("2000.00"), "c": D("333.33")}
    deposit, deductions = _bill(milestones, D("1000.00"), ["deposit", "a", "b", "c"])
    assert deposit == D("1000.00")
    assert deductions == {"a": D("300.00"), "b": D("600.00"), "c": D("100.00")}


def test_a_deposit_after_every_milestone_bills_nothing_and_one_in_between_is_capped() -> None:
    milestones = {"a": D("1000.00"), "b": D("500.00")}
    assert _bill(milestones, D("900.00"), ["a", "b", "deposit"]) == (D("0"), {"a": D("0"), "b": D("0")})
    deposit, deductions = _bill(milestones, D("900.00"), ["a", "deposit", "b"])
    assert (deposit, deductions) == (D("500.00"), {"a": D("0"), "b": D("500.00")})


amounts = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(amounts, min_size=1, max_size=5),
    deposit_pct=st.decimals(min_value=D("0.01"), max_value=D("100"), places=2),
    data=st.data(),
)
def test_in_any_order_deposit_plus_milestone_invoices_never_exceed_the_milestones(
    values, deposit_pct, data
) -> None:  # type: ignore[no-untyped-def]
    milestones = {f"m{i}": v for i, v in enumerate(values)}
    plan = resolve_plan(
        "USD",
        [MilestoneSpec(k, k, amount=v) for k, v in milestones.items()],
        DepositSpec(percent=deposit_pct),
    )
    order = data.draw(st.permutations(["deposit", *milestones]))
    deposit, deductions = _bill(milestones, plan.deposit, list(order))
    billed = deposit + sum(milestones[k] - deductions[k] for k in milestones)
    assert billed == sum(milestones.values())  # every deposit billed is fully recouped, never more
    assert all(D(0) <= deductions[k] <= milestones[k] for k in milestones)
    if order[0] == "deposit":
        assert deposit == plan.deposit


def test_every_order_of_three_events_sums_exactly() -> None:
    milestones = {"a": D("0.01"), "b": D("0.02")}
    for order in itertools.permutations(["deposit", "a", "b"]):
        deposit, deductions = _bill(milestones, D("0.02"), list(order))
        assert deposit + sum(milestones[k] - deductions[k] for k in milestones) == D("0.03"), order
