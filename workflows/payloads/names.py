"""Names the workflows and their callers share: workflow ids from business ids, activity names, the task
queue.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

TASK_QUEUE_DEFAULT = "invoiceflow"


# Activity names: the workflow refers to activities by name so it never imports their heavy modules.
class ActivityName:
    ISSUE_INVOICE = "issue_invoice"
    CREATE_CYCLE_INVOICE = "create_cycle_invoice"
    RECORD_SUBSCRIPTION_EVENT = "record_subscription_event"
    ADD_SUBSCRIPTION_TERMS = "add_subscription_terms"
    ROUTE_APPROVAL = "route_approval"
    CONVERT_ESTIMATE = "convert_estimate"
    RECORD_ESTIMATE_STATUS = "record_estimate_status"
    REVISE_DRAFT = "revise_draft"
    RENDER_INVOICE_PDF = "render_invoice_pdf"
    SEND_EMAIL = "send_email"
    SET_STATUS = "set_invoice_status"
    APPLY_PAYMENT = "apply_payment"
    CLOSE_INVOICE = "close_invoice"
    RECORD_EVENT = "record_invoice_event"
    CREATE_PROJECT_FROM_DEAL = "create_project_from_deal"
    SYNC_ACCOUNTING = "sync_accounting"
    BILL_PROJECT_TRIGGER = "bill_project_trigger"
    LOAD_TM_SCHEDULE = "load_tm_schedule"
    SEND_PROJECT_EMAIL = "send_project_email"
    ISSUE_CREDIT_NOTE = "issue_credit_note"
    APPLY_REFUND = "apply_refund"
    RENDER_CREDIT_NOTE_PDF = "render_credit_note_pdf"
    PLACE_DUNNING_HOLD = "place_dunning_hold"
    RELEASE_DUNNING_HOLDS = "release_dunning_holds"
    APPLY_LATE_FEE = "apply_late_fee"


def invoice_workflow_id(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


def subscription_workflow_id(subscription_id: str) -> str:
    return f"subscription-{subscription_id}"


def estimate_workflow_id(estimate_id: str) -> str:
    return f"estimate-{estimate_id}"


def project_workflow_id(project_id: str) -> str:
    return f"project-{project_id}"
