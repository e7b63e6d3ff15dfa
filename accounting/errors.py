"""What can go wrong talking to an accounting provider, sorted by what the caller should do next.

The workflow's activities map these to Temporal retry behaviour: ``RateLimited`` and ``Transient`` are
retried (``RateLimited`` after ``retry_after_seconds``), ``AuthExpired`` is retried after a token refresh,
``StaleObject`` is retried at once, and ``ValidationFailed``/``AccessDenied`` are non-retryable because
only a person (fixing a chart of accounts, reconnecting an organisation) can make them pass.
"""

from __future__ import annotations


class AccountingError(Exception):
    """Base of every connector error; ``provider`` names the service ("xero", "qbo", "freshbooks")."""

    retryable: bool = True

    def __init__(self, message: str, *, provider: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code


class RateLimited(AccountingError):
    """The provider answered 429 more often than the connector waits inline; retry after the delay."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float,
        problem: str = "",
        provider: str = "",
        status_code: int | None = 429,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.retry_after_seconds = retry_after_seconds
        self.problem = problem  # Xero's X-Rate-Limit-Problem: "minute", "day", "concurrent"


class Transient(AccountingError):
    """5xx, a timeout or a dropped connection: the write may or may not have happened, so retry with the
    same idempotency key."""


class AuthExpired(AccountingError):
    """401: the access token is expired or revoked; refresh it and retry."""


class StaleObject(AccountingError):
    """QBO 5010: someone changed the object since we read its SyncToken, and re-reading inside the
    connector did not settle it; retrying the whole operation is safe."""


class ValidationFailed(AccountingError):
    """The provider refused the data (unknown account code, unknown tax type, amount over the balance).
    ``provider_message`` is the provider's own text, to show a person; retrying cannot help."""

    retryable = False

    def __init__(
        self, provider_message: str, *, provider: str = "", status_code: int | None = 400, code: str = ""
    ) -> None:
        super().__init__(provider_message, provider=provider, status_code=status_code)
        self.provider_message = provider_message
        self.code = code  # QBO error code ("2500") or FreshBooks errno, when the provider gives one


class LockedByPayments(ValidationFailed):
    """The provider will not edit an invoice that has payments on it (Xero): remove them, edit it,
    record them again (``activities.books_money``)."""


class NotFound(ValidationFailed):
    """The object is not at the provider (deleted there, or the id belongs to another organisation)."""


class AccessDenied(AccountingError):
    """403: the app is not connected to this organisation (or lost a scope); someone must reconnect."""

    retryable = False


class ConnectionProblem(AccessDenied):
    """Only a person can fix this: configure the provider's app, or (re)connect the organisation."""


class NotConnected(ConnectionProblem):
    """No tokens stored for this organisation yet."""


class ReconnectRequired(ConnectionProblem):
    """The provider refused the refresh token (``invalid_grant``: expired, revoked or already spent)."""
