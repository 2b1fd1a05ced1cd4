"""Charter's exceptions: one root, each subclass carrying its HTTP status."""

from __future__ import annotations

from typing import Any


class CharterError(Exception):
    """Charter could not do what was asked."""

    status: int = 500

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The one error shape every interface reports."""
        return {"error": {"type": type(self).__name__, "message": self.message,
                          "details": self.details}}


class NotFound(CharterError):
    """The thing asked for does not exist."""

    status = 404


class Forbidden(CharterError):
    """The caller may not do this."""

    status = 403


class Conflict(CharterError):
    """The request conflicts with the current state."""

    status = 409


class InvalidInput(CharterError):
    """The input is not valid."""

    status = 422


class TooLarge(InvalidInput):
    """The input is larger than Charter keeps."""

    status = 413


class OrgInvalid(InvalidInput):
    """The org file is not valid; nothing was changed."""


class NoOrgLoaded(NotFound):
    """No org is loaded yet: run `charter org load` first."""


class ConfigurationError(CharterError):
    """Charter is not configured correctly."""

    status = 500


class LedgerError(CharterError):
    """The ledger refused the operation."""

    status = 409
