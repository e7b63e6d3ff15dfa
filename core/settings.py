"""Runtime configuration: every knob is an ``INVOICEFLOW_*`` environment variable (or a ``.env`` line).

The README's configuration table is the user-facing copy of this class; keep them in step.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-change-me"
DEFAULT_API_TOKEN = "dev-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INVOICEFLOW_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: `invoiceflow dev` starts an embedded PostgreSQL.",
    )
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "invoiceflow"
    temporal_tls: bool = Field(
        default=False,
        description="Connect to Temporal over TLS (implied by any temporal_tls_* file or an API key).",
    )
    temporal_tls_ca: Path | None = Field(
        default=None,
        description="PEM file of the CA that signed the server's certificate; unset: system CAs.",
    )
    temporal_tls_cert: Path | None = Field(
        default=None, description="PEM client certificate for mTLS (Temporal Cloud's mTLS namespaces)."
    )
    temporal_tls_key: Path | None = Field(default=None, description="PEM private key of temporal_tls_cert.")
    temporal_tls_server_name: str | None = Field(
        default=None,
        description="Name to verify the server's certificate against, if not the address's host.",
    )
    temporal_api_key: str | None = Field(
        default=None, description="Temporal Cloud API key, sent as `authorization: Bearer <key>` (needs TLS)."
    )
    worker_max_concurrent_activities: int = Field(
        default=16,
        ge=1,
        description="Activities one worker runs at once (each a thread: PostgreSQL, SMTP, accounting calls).",
    )
    worker_workflow_pollers: int = Field(
        default=2, ge=1, description="Long-polls for workflow tasks; more only help with a remote server."
    )
    worker_activity_pollers: int = Field(default=2, ge=1, description="Long-polls for activity tasks.")

    log_format: Literal["json", "console"] = Field(
        default="console", description="`json`: one JSON object a line (production); `console`: for people."
    )
    log_level: str = "INFO"
    metrics_token: str | None = Field(
        default=None,
        description="If set, `GET /metrics` needs `Authorization: Bearer <it>`; unset: open (keep it "
        "off the internet).",
    )
    worker_metrics_port: int | None = Field(
        default=None, description="Port of the worker's /metrics (SDK and invoiceflow metrics); unset: none."
    )
    worker_metrics_host: str = Field(default="127.0.0.1", description="Address the worker's /metrics binds.")
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP collector (e.g. http://otel:4318): traces are exported there."
    )

    smtp_host: str | None = Field(
        default=None, description="SMTP relay. Unset: `invoiceflow dev` starts its own dev mailbox."
    )
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 30.0
    email_max_unknown_resends: int = Field(
        default=1,
        ge=0,
        description="Resends of an email whose first send had an unknown outcome (the worker died after "
        "the final dot, before the reply); then it waits for an operator, shown as may have been delivered.",
    )
    email_unknown_resend_delay_s: float = Field(
        default=30.0,
        ge=0,
        description="Wait before resending an email whose last send had an unknown outcome.",
    )
    email_operator_poll_s: float = Field(
        default=60.0,
        gt=0,
        description="How often an email waiting for an operator (resend or mark delivered) looks again.",
    )
    mail_from: str = "Billing <billing@invoiceflow.localhost>"

    dispatcher_in_api: bool = Field(
        default=True,
        description="The API process runs the webhook inbox's dispatcher; false: `invoiceflow dispatcher` "
        "processes do (woken through PostgreSQL NOTIFY), off the receivers' event loop.",
    )

    public_url: str = "http://localhost:8000"
    secret_key: str = DEFAULT_SECRET
    api_token: str = DEFAULT_API_TOKEN

    # The operator console (/app): users sign in; sessions are signed with secret_key.
    session_idle_minutes: int = Field(
        default=30, ge=1, description="A console session without a request for this long signs out."
    )
    session_max_hours: int = Field(default=12, ge=1, description="A console session ends after this long.")
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins per account within 15 minutes before it is throttled."
    )
    login_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins per client address within 15 minutes before throttling.",
    )
    admin_email: str | None = Field(
        default=None, description="`invoiceflow dev` creates this first admin user when no user exists."
    )
    admin_password: str | None = Field(
        default=None, description="Its password; unset: `invoiceflow dev` generates one and prints it once."
    )

    template_dir: Path | None = Field(
        default=None, description="Folder with invoice.html and email templates; unset: built-in ones."
    )
    render_processes: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4),
        ge=0,
        description="Processes that render invoice PDFs in a worker; 0 renders on the activity threads.",
    )
    workflow_task_slots: int = Field(
        default=10,
        ge=2,
        description="Workflow tasks one worker runs at once. They are CPU-bound Python sharing one GIL, so "
        "more slots only make each task slower: at Temporal's default of 100, a burst of invoices pushed "
        "single tasks past the 10 s workflow task timeout, and the retries wasted the work.",
    )
    max_cached_workflows: int = Field(
        default=500,
        ge=0,
        description="Workflows a worker keeps in memory between their tasks. An invoice spends most of its "
        "life parked on a timer, so Temporal's default (1,000) made memory grow with the invoices waiting; "
        "an evicted invoice replays its short history when its next timer or message comes.",
    )
    seller_name: str = "Your IT Company"
    seller_address: str = ""
    seller_tax_id: str = ""
    # E-invoicing (EN 16931): the seller as the documents name it; seller_tax_id doubles as the VAT id
    # when seller_vat_id is unset. documents.einvoice reads these; see the README's e-invoice section.
    seller_street: str = Field(default="", description="Seller street and number (BT-35).")
    seller_street2: str = Field(default="", description="Seller address line 2 (BT-36).")
    seller_city: str = Field(default="", description="Seller city (BT-37).")
    seller_postal_code: str = Field(default="", description="Seller postal code (BT-38).")
    seller_region: str = Field(default="", description="Seller country subdivision (BT-39).")
    seller_country: str = Field(default="", description="Seller ISO 3166-1 alpha-2 country (BT-40).")
    seller_vat_id: str = Field(default="", description="Seller VAT identifier with country prefix (BT-31).")
    seller_legal_id: str = Field(default="", description="Seller legal registration id (BT-30).")
    seller_legal_form: str = Field(default="", description="Seller additional legal information (BT-33).")
    seller_iban: str = Field(default="", description="Account the client pays to (BT-84).")
    seller_bic: str = Field(default="", description="BIC of that account (BT-86).")
    seller_endpoint: str = Field(
        default="", description="Seller electronic address `scheme:id` (BT-34), e.g. 0208:0123456789."
    )
    seller_contact_name: str = Field(default="", description="Seller contact point (BT-41).")
    seller_contact_phone: str = Field(default="", description="Seller contact telephone (BT-42).")
    seller_contact_email: str = Field(default="", description="Seller contact email (BT-43).")
    einvoice_processes: int = Field(
        default=1,
        ge=0,
        description="Processes that validate e-invoices against the official rules (saxonche); 0 runs them "
        "on the calling thread (tests only: a native crash would take the process down).",
    )
    invoice_number_prefix: str = "INV"
    credit_note_number_prefix: str = Field(
        default="CN", description="Credit note numbers look like CN-2026-000001."
    )
    default_reminder_offsets: str = Field(
        default="-3,0,7,14,30",
        description="Days relative to the due date on which reminders go out; escalation after the last.",
    )
    max_amount: Decimal = Field(
        default=Decimal("9999999999.99"),
        gt=0,
        le=Decimal("999999999999.99"),
        description="Largest unit price, line, invoice total or payment accepted, in any currency; "
        "never above 999,999,999,999.99 (billing.limits.AMOUNT_CEILING).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body; a longer one is refused with 413 before it is read.",
    )
    expense_approval_threshold: Decimal = Field(
        default=Decimal("500.00"), description="Expenses above this amount (their currency) need approval."
    )
    approval_remind_after_hours: int = Field(
        default=24, ge=1, description="Remind an approver who has not decided."
    )
    approval_escalate_after_hours: int = Field(
        default=48, ge=1, description="Hand an undecided step to its delegate."
    )
    approval_link_ttl_hours: int = Field(
        default=7 * 24, ge=1, description="How long an approval link stays valid."
    )
    reminder_send_hour: int = Field(default=9, ge=0, le=23, description="Local hour of the client.")
    finance_lead_email: str | None = Field(
        default=None,
        description="Internal finance lead: dunning policy steps with the finance_lead recipient go here.",
    )

    # Webhook receivers: a provider without a secret answers 404 (not configured, not an open door).
    hubspot_webhook_secret: str | None = Field(
        default=None, description="HubSpot app client secret (signature v3)."
    )
    pipedrive_webhook_user: str = Field(
        default="invoiceflow", description="Basic-auth user set on the Pipedrive webhook."
    )
    pipedrive_webhook_secret: str | None = Field(
        default=None, description="Basic-auth password set on the Pipedrive webhook."
    )
    jira_webhook_secret: str | None = None
    linear_webhook_secret: str | None = None
    github_webhook_secret: str | None = None
    asana_webhook_secret: str | None = Field(
        default=None,
        description="Token in the Asana target URL (?token=...); the handshake's X-Hook-Secret is stored.",
    )
    docusign_webhook_secret: str | None = Field(
        default=None, description="DocuSign Connect HMAC key(s), comma-separated."
    )
    dropbox_sign_webhook_secret: str | None = Field(
        default=None, description="Dropbox Sign API key (signs event_hash)."
    )
    pandadoc_webhook_secret: str | None = None
    generic_webhook_secret: str | None = Field(default=None, description="Key of the generic signed webhook.")
    toggl_webhook_secret: str | None = Field(
        default=None, description="Toggl Track webhook subscription secret (X-Webhook-Signature-256)."
    )
    clockify_webhook_secret: str | None = Field(
        default=None, description="Clockify webhook token(s), comma-separated (Clockify-Signature)."
    )
    payment_link_template: str | None = Field(
        default=None,
        description="Pay button target on the hosted invoice page, e.g. a Stripe Payment Link with "
        "`?client_reference_id={invoice_id}`; placeholders {invoice_id} {number} {amount_due} {currency}.",
    )
    stripe_webhook_secret: str | None = Field(
        default=None, description="Stripe endpoint secret(s), whsec_..., comma-separated."
    )
    hubspot_won_stages: str = Field(
        default="closedwon", description="Deal stage ids that mean won (comma-separated)."
    )
    jira_done_statuses: str = Field(
        default="Done", description="Jira status names that mean a milestone is done."
    )
    deal_won_plan: str = Field(
        default="full",
        description="How a won deal with no project bills: `full` (its line items at once) or "
        "`deposit:<percent>`.",
    )
    default_currency: str = Field(
        default="USD", description="Currency of a customer created from a CRM deal."
    )
    default_payment_terms: str = Field(
        default="net_30", description="Terms of a customer created from a CRM deal."
    )
    hubspot_api_base_url: str = "https://api.hubapi.com"
    hubspot_api_token: str | None = Field(
        default=None, description="HubSpot private-app token (deal and line items)."
    )
    asana_api_base_url: str = "https://app.asana.com"
    asana_api_token: str | None = Field(
        default=None, description="Asana personal access token (confirms a task is completed)."
    )
    pipedrive_api_base_url: str = "https://api.pipedrive.com"
    pipedrive_api_token: str | None = Field(
        default=None, description="Pipedrive API token (deal and products)."
    )

    # Accounting sync: at most one provider and organisation per installation. Tokens come
    # from `invoiceflow connect <provider>` and live encrypted in the database, not in settings.
    accounting_provider: Literal["none", "xero", "qbo", "freshbooks", "netsuite"] = Field(
        default="none", description="Where issued invoices and payments are synced; `none` skips the sync."
    )
    accounting_sales_account: str = Field(
        default="200",
        description="Revenue account of every line: a Xero account code, a QBO Item id; FreshBooks has none.",
    )
    accounting_tax_codes: str = Field(
        default="",
        description="Tax rate → provider tax code, e.g. `19=OUTPUT2,0=NONE`; a 0 % rate defaults to no tax.",
    )
    accounting_payment_account: str | None = Field(
        default=None,
        description="Where payments land: Xero bank account code (090), QBO deposit account id; "
        "FreshBooks: unused.",
    )
    accounting_bad_debt_account: str | None = Field(
        default=None,
        description="Where write-offs go: a Xero expense account code, a QBO Bad Debt Item id; unset: the "
        "sales account.",
    )
    accounting_redirect_uri: str | None = Field(
        default=None,
        description="OAuth redirect URI registered for the app; unset: "
        "<public_url>/accounting/oauth/callback.",
    )
    accounting_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one accounting API call.")
    accounting_rate_limit_scope: Literal["deployment", "process"] = Field(
        default="deployment",
        description="`deployment`: provider rate limits hold across every worker process (PostgreSQL); "
        "`process`: per process only.",
    )
    accounting_rate_limit: str = Field(
        default="",
        description="Replace the provider's published limit: `CALLS/SECONDS[,CONCURRENT]`, e.g. `60/60,5`; "
        "unset: the provider's own (Xero 60/min, 5 at once).",
    )
    accounting_poll_minutes: float = Field(
        default=15.0,
        ge=0,
        description="How often the books are polled for payments, credit notes and voids made there "
        "(the safety net of the webhooks); 0: webhooks only.",
    )
    xero_webhook_key: str | None = Field(
        default=None,
        description="Xero webhook signing key(s), comma-separated; unset: /webhooks/xero is 404.",
    )
    qbo_webhook_verifier: str | None = Field(
        default=None, description="QuickBooks Online webhook verifier token(s); unset: /webhooks/qbo is 404."
    )
    freshbooks_webhook_verifier: str | None = Field(
        default=None,
        description="FreshBooks callback verifier(s) (sent in its verification request); unset: 404.",
    )
    token_key: str | None = Field(
        default=None,
        description="Fernet key(s) for stored OAuth tokens, comma-separated, first encrypts; unset: derived "
        "from secret_key.",
    )
    xero_base_url: str = "https://api.xero.com/api.xro/2.0"
    xero_token_url: str = "https://identity.xero.com/connect/token"
    xero_tenant_id: str | None = Field(default=None, description="Xero organisation (tenant) id.")
    xero_client_id: str | None = None
    xero_client_secret: str | None = None
    qbo_base_url: str = "https://quickbooks.api.intuit.com"
    qbo_token_url: str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    qbo_realm_id: str | None = Field(default=None, description="QuickBooks company (realm) id.")
    qbo_client_id: str | None = None
    qbo_client_secret: str | None = None
    freshbooks_base_url: str = "https://api.freshbooks.com"
    freshbooks_token_url: str = "https://api.freshbooks.com/auth/oauth/token"
    freshbooks_account_id: str | None = Field(default=None, description="FreshBooks business account id.")
    freshbooks_client_id: str | None = None
    freshbooks_client_secret: str | None = None
    # NetSuite: OAuth 2.0 client credentials (M2M), a JWT signed with the mapped certificate's key.
    netsuite_account_id: str | None = Field(
        default=None, description="NetSuite account id (`1234567`, `1234567_SB1`)."
    )
    netsuite_base_url: str | None = Field(
        default=None, description="SuiteTalk REST host; unset: https://<account>.suitetalk.api.netsuite.com."
    )
    netsuite_token_url: str | None = Field(
        default=None, description="Token endpoint; unset: <base>/services/rest/auth/oauth2/v1/token."
    )
    netsuite_client_id: str | None = Field(default=None, description="The integration record's client id.")
    netsuite_certificate_id: str | None = Field(
        default=None, description="Certificate ID of the OAuth 2.0 Client Credentials (M2M) mapping."
    )
    netsuite_private_key: SecretStr | None = Field(
        default=None, description="PEM private key of that certificate."
    )
    netsuite_private_key_file: str | None = Field(default=None, description="…or a file holding it.")
    netsuite_jwt_algorithm: Literal["PS256", "PS384", "PS512", "ES256", "ES384", "ES512"] = "PS256"
    netsuite_scope: str = Field(default="rest_webservices", description="Scopes of the client assertion.")
    netsuite_concurrency: int = Field(
        default=5,
        ge=1,
        description="Concurrent calls this installation may make (the account's limit or its share).",
    )
    netsuite_subsidiary_id: str | None = Field(
        default=None, description="Subsidiary of new customers (OneWorld)."
    )
    netsuite_currency_ids: str = Field(
        default="",
        description="Currency → NetSuite internal id, e.g. `USD=1,EUR=4`; unset: looked up by symbol.",
    )

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str | None) -> str | None:
        """Accept the plain ``postgresql://`` URLs people copy around; SQLAlchemy needs the driver named."""
        if value is None:
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "INVOICEFLOW_DATABASE_URL is not set. Point it at PostgreSQL, or run `invoiceflow dev`, "
                "which starts an embedded one."
            )
        return self.database_url

    @property
    def temporal_uses_tls(self) -> bool:
        return bool(
            self.temporal_tls or self.temporal_tls_ca or self.temporal_tls_cert or self.temporal_api_key
        )

    @property
    def smtp_configured(self) -> bool:
        return self.smtp_host is not None

    def reminder_offsets(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.default_reminder_offsets.split(",") if part.strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()


def split_secrets(value: str | None) -> list[str]:
    """A secret setting may list several (comma-separated) while a provider rotates keys."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
