"""Dunning on the database: named policies, the plan an invoice's reminders follow, holds.

The rules themselves are pure (``billing.dunning``); this module picks the policy (invoice, then
customer, then none = the default offsets of ``billing.reminders``), freezes it on the invoice at issue,
turns schedules into the workflow's ``ReminderPlanStep`` payloads and back, records holds, and builds
the preview the API shows. The issue activity and the preview call the same ``reminder_plan`` so the
preview lists exactly what the workflow waits for.

One module per concern: ``plans`` (policies and the reminder plan frozen at issue), ``holds``,
``preview`` (what an operator sees coming), ``fees``.
"""

from persistence.dunning.fees import (
    MAX_PLANNED_FEES,
    apply_late_fee,
    late_fee_instants,
    late_fee_rows,
)
from persistence.dunning.holds import (
    active_customer_holds,
    active_invoice_holds,
    add_hold_event,
    hold_spec,
    place_hold,
    release_holds,
)
from persistence.dunning.plans import (
    default_offsets,
    freeze_policy,
    get_policy,
    invoice_plan,
    plan_steps,
    reminder_plan,
    requested_policy,
    resume_instant,
)
from persistence.dunning.preview import (
    Preview,
    PreviewEntry,
    hold_out,
    holds_out,
    preview,
)

__all__ = [
    "MAX_PLANNED_FEES",
    "Preview",
    "PreviewEntry",
    "active_customer_holds",
    "active_invoice_holds",
    "add_hold_event",
    "apply_late_fee",
    "default_offsets",
    "freeze_policy",
    "get_policy",
    "hold_out",
    "hold_spec",
    "holds_out",
    "invoice_plan",
    "late_fee_instants",
    "late_fee_rows",
    "place_hold",
    "plan_steps",
    "preview",
    "release_holds",
    "reminder_plan",
    "requested_policy",
    "resume_instant",
]
