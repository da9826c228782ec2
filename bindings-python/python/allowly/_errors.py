"""Exceptions of the Allowly SDK. The native engine raises these classes (by name), so every core
error code reaches Python as ``exc.code``; messages may change, codes are the contract."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AllowlyError",
    "AllowlyAPIError",
    "AllowlyConnectionError",
    "AllowlyTimeoutError",
    "AllowlyProtocolError",
    "AllowlyTypeError",
    "AllowlyConfigError",
    "FieldError",
    "VerificationError",
    "SchemaError",
    "UnknownKeyError",
    "KeyOutsideActiveWindowError",
    "SignatureMismatchError",
]


@dataclass
class FieldError:
    """One invalid field of a request, named by its path (``actions[2]``, ``context.amount``)."""

    field: str
    message: str


class AllowlyError(Exception):
    """Base of every error the SDK raises; ``code`` is a stable machine code."""

    code: str

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class AllowlyAPIError(AllowlyError):
    """The engine (embedded) or the runtime (remote) refused the request. Same names as the
    official client: ``status``, ``code``, ``message``, ``fields``, ``retry_after_seconds``.
    Embedded errors carry the HTTP status the server answers for the same error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[FieldError] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.fields = list(fields or [])
        self.retry_after_seconds = retry_after_seconds

    def __reduce__(self) -> tuple[type[AllowlyAPIError], tuple[int, str, str, list[FieldError], float | None]]:
        return (type(self), (self.status, self.code, self.message, self.fields, self.retry_after_seconds))

    def __repr__(self) -> str:
        return f"AllowlyAPIError(status={self.status}, code={self.code!r}, message={self.message!r})"


class AllowlyConnectionError(AllowlyError):
    """The runtime could not be reached (calls other than ``check``, which falls back instead)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)

    def __reduce__(self) -> tuple[type[AllowlyConnectionError], tuple[str, str]]:
        return (type(self), (self.code, self.message))


class AllowlyTimeoutError(AllowlyConnectionError, TimeoutError):
    """The runtime did not answer in time (calls other than ``check``)."""


class AllowlyProtocolError(AllowlyConnectionError, ValueError):
    """The runtime answered outside the wire contract."""


class AllowlyTypeError(AllowlyError, TypeError):
    """An argument has the wrong type or is not JSON data (floats are refused: money is in micros).
    Nothing was sent or written."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, "invalid_type")
        self.field = field

    def __reduce__(self) -> tuple[type[AllowlyTypeError], tuple[str, str | None]]:
        return (type(self), (self.message, self.field))


class AllowlyConfigError(AllowlyError, ValueError):
    """A client setting or argument value cannot be used (nothing was sent)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "invalid_config")

    def __reduce__(self) -> tuple[type[AllowlyConfigError], tuple[str]]:
        return (type(self), (self.message,))


class VerificationError(AllowlyError):
    """A receipt, checkpoint or export did not verify. The subclasses have the reference
    verifier's names (``allowly_receipt_format``), so verification code ports unchanged;
    an untrusted key or a checkpoint mismatch raise this class itself, as the reference does."""

    def __init__(self, message: str, code: str = "verification_error") -> None:
        super().__init__(message, code)

    def __reduce__(self) -> tuple[type[VerificationError], tuple[str, str]]:
        return (type(self), (self.message, self.code))


class SchemaError(VerificationError):
    """Shape, field pairing, encoding or timestamp rules."""


class UnknownKeyError(VerificationError):
    """No key of the set has the receipt's ``kid``."""


class KeyOutsideActiveWindowError(VerificationError):
    """The key's active window does not cover the receipt's ``issued_at``."""


class SignatureMismatchError(VerificationError):
    """The Ed25519 signature does not match."""
