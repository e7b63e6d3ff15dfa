"""The one error type of the billing rules.

Every validation failure raises ``MoneyError`` (or a subclass) with a message a user can act on that
starts with the offending field, e.g. ``lines[2].quantity: must be greater than 0``, so the API can
return it verbatim and a workflow can fail the request without guessing what went wrong.
"""

from __future__ import annotations


class MoneyError(ValueError):
    """A billing input or operation was refused; ``str(error)`` names the field and the fix."""


class DunningError(MoneyError):
    """An invalid dunning policy, send window, late fee or hold (``billing.dunning``); a ``MoneyError``
    so callers that already turn billing errors into 422 responses need no new branch."""
