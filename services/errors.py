"""Domain errors the services raise; each caller (API, console, CLI, receivers) renders them its own way.

``api.errors`` maps them to HTTP: ``NotFound`` 404, ``Invalid`` 422 naming the field, ``Conflict`` 409
(the invoice's state refuses the request, with the workflow's own reason), ``Unavailable`` 503.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a use case reports to its caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """The thing the request names does not exist."""


class Invalid(ServiceError):
    """The request is malformed or breaks a rule; ``field`` names the input at fault (body field)."""

    def __init__(self, field: str, message: str, *, location: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.location = location


class Conflict(ServiceError):
    """The request is well formed but the current state refuses it (a workflow validator said no)."""


class Unavailable(ServiceError):
    """A component the use case needs (Temporal) cannot be reached; repeating the request is safe."""
