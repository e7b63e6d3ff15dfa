"""A project's billing plan as the API takes it (deposit and milestones): shared by projects and by estimates
that turn into a project when accepted."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from api.schemas import DecimalStr, Strict
from persistence import projects as repo

Key = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
RefValue = Annotated[str, Field(min_length=1, max_length=300)]


class DepositCreate(Strict):
    percent: DecimalStr | None = None
    amount: DecimalStr | None = None
    on: Literal["signature", "deal_won"] = Field(
        default="signature", description="The event that bills the deposit."
    )


class MilestoneCreate(Strict):
    key: Key
    name: str = Field(min_length=1, max_length=300)
    amount: DecimalStr | None = None
    percent: DecimalStr | None = Field(default=None, description="Percent of contract_amount.")
    bill_on: Literal["milestone", "signature", "deal_won", "after_paid"] = Field(
        default="milestone",
        description="What bills it; `after_paid`: the invoice of `after` (a milestone key or `deposit`) "
        "paid in full, whichever source reports the payment.",
    )
    after: Key | None = Field(default=None, description='With `bill_on: "after_paid"`: `deposit` or a key.')
    external_refs: dict[str, RefValue] = Field(
        default_factory=dict,
        description='PM-tool objects whose completion bills it, e.g. {"github": "globex/portal#3"}.',
    )

    @model_validator(mode="after")
    def _after(self) -> MilestoneCreate:
        if (self.bill_on == "after_paid") != (self.after is not None):
            raise ValueError('after: give it exactly when bill_on is "after_paid"')
        if self.after == self.key:
            raise ValueError("after: a milestone cannot wait for its own invoice")
        return self

    @field_validator("external_refs")
    @classmethod
    def _systems(cls, refs: dict[str, str]) -> dict[str, str]:
        unknown = set(refs) - repo.MILESTONE_REF_SYSTEMS
        if unknown:
            raise ValueError(f"unknown systems {sorted(unknown)}; use {sorted(repo.MILESTONE_REF_SYSTEMS)}")
        return refs
