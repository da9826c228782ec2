"""Exceptions of the Allowly SDK: one class per kind of failure (core's ``ErrorKind``), the same tree
as the Node SDK's. The native engine hands every error over to :func:`error_of` with its kind, and
the class is the one lookup below (``_CLASS_OF_KIND``); nothing else picks a class.

Every exception carries ``code`` (the stable machine code: the contract), ``kind``, ``status`` (the
HTTP status the server answers, or did answer, for this error; ``None`` when no runtime answered),
``fields`` and ``retry_after_seconds``. The message is the human one and may change.

::

    AllowlyError
    ├── AllowlyAPIError              the engine (embedded) or the runtime (remote) refused
    │   ├── InvalidRequestError      invalid_request   422 (400, 405, 413, 415 from a runtime)
    │   ├── UnauthorizedError        unauthorized      401
    │   ├── ForbiddenError           forbidden         403
    │   ├── NotFoundError            not_found         404
    │   ├── ConflictError            conflict          409
    │   ├── RateLimitError           rate_limited      429
    │   ├── UnavailableError         unavailable       503 (502)
    │   └── InternalError            internal          500
    ├── AllowlyConnectionError       unreachable       the runtime could not be reached
    │   ├── AllowlyTimeoutError      timeout           no answer in time (also a TimeoutError)
    │   └── AllowlyProtocolError     protocol          an answer outside the wire contract (a ValueError)
    ├── VerificationError            verification      a receipt, checkpoint or export did not verify
    │   └── SchemaError, UnknownKeyError, KeyOutsideActiveWindowError, SignatureMismatchError
    ├── AllowlyTypeError             an argument is not of its type (a TypeError; nothing was sent)
    └── AllowlyConfigError           a client setting cannot be used (a ValueError; nothing was sent)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from . import _native

__all__ = [
    "AllowlyError",
    "AllowlyAPIError",
    "InvalidRequestError",
    "UnauthorizedError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "UnavailableError",
    "InternalError",
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
    "error_of",
]


@dataclass
class FieldError:
    """One invalid field of a request, named by its path (``actions[2]``, ``context.amount``)."""

    field: str
    message: str


def _rebuild(cls: type[AllowlyError], message: str) -> AllowlyError:
    """The exception of class ``cls`` before its attributes are restored (``pickle``, ``copy``)."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc


class AllowlyError(Exception):
    """Base of every error the SDK raises. ``code`` is a stable machine code and ``kind`` one of
    core's error kinds; ``status``, ``fields`` and ``retry_after_seconds`` as for
    :class:`AllowlyAPIError` (``None`` and ``[]`` when they do not apply)."""

    #: The kind of an instance made without one (each class's own kind).
    KIND = "internal"

    message: str
    code: str
    kind: str
    status: int | None
    fields: list[FieldError]
    retry_after_seconds: float | None

    def __init__(
        self,
        message: str,
        code: str = "error",
        *,
        kind: str | None = None,
        status: int | None = None,
        fields: Sequence[FieldError] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = type(self).KIND if kind is None else kind
        self.status = status
        self.fields = list(fields or [])
        self.retry_after_seconds = retry_after_seconds

    def __reduce__(self) -> tuple[Callable[..., AllowlyError], tuple[type[AllowlyError], str], dict[str, Any]]:
        # Every attribute travels as state, whatever the constructor of the class takes.
        return (_rebuild, (type(self), self.message), dict(self.__dict__))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class AllowlyAPIError(AllowlyError):
    """The engine (embedded) or the runtime (remote) refused the request. Same constructor and
    attributes as the official client's: ``status``, ``code``, ``message``, ``fields``,
    ``retry_after_seconds``. Embedded errors carry the HTTP status the server answers for the same
    error. The SDK raises one of the subclasses, by kind; one made by hand from a status gets the
    kind a runtime's answer with that status has."""

    status: int

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[FieldError] | None = None,
        retry_after_seconds: float | None = None,
        *,
        kind: str | None = None,
    ) -> None:
        if kind is None and type(self) is AllowlyAPIError:
            # Made by hand from a status (the SDK raises the subclasses): core's kind of that status.
            kind = _native.error_kind_of_status(status)
        super().__init__(
            message, code, kind=kind, status=status, fields=fields, retry_after_seconds=retry_after_seconds
        )


class InvalidRequestError(AllowlyAPIError):
    """The request is malformed, out of range or over a limit (``fields`` names the members);
    nothing was done."""

    KIND = "invalid_request"


class UnauthorizedError(AllowlyAPIError):
    """The API key is missing, malformed, unknown or revoked."""

    KIND = "unauthorized"


class ForbiddenError(AllowlyAPIError):
    """The API key may not make this call (a runtime key on a setup call)."""

    KIND = "forbidden"


class NotFoundError(AllowlyAPIError):
    """The named object does not exist in this workspace (``code`` says which: ``policy_not_found``...)."""

    KIND = "not_found"


class ConflictError(AllowlyAPIError):
    """The request conflicts with the current state: a resolved confirmation, a settled receipt, an
    idempotency key reused for another request..."""

    KIND = "conflict"


class RateLimitError(AllowlyAPIError):
    """Too many requests: retry after ``retry_after_seconds``."""

    KIND = "rate_limited"


class UnavailableError(AllowlyAPIError):
    """The store (or the runtime's) is unavailable or busy; retry after ``retry_after_seconds``.
    With ``code == "outcome_unknown"`` the change may have happened: retry under the same
    idempotency key to learn the answer."""

    KIND = "unavailable"


class InternalError(AllowlyAPIError):
    """The engine failed (signing, I/O, an unexpected server error)."""

    KIND = "internal"


class AllowlyConnectionError(AllowlyError):
    """The runtime could not be reached (calls other than ``check``, which falls back instead)."""

    KIND = "unreachable"

    def __init__(self, code: str, message: str, *, kind: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code, kind=kind, status=status)


class AllowlyTimeoutError(AllowlyConnectionError, TimeoutError):
    """The runtime did not answer in time (calls other than ``check``)."""

    KIND = "timeout"


class AllowlyProtocolError(AllowlyConnectionError, ValueError):
    """The runtime answered outside the wire contract."""

    KIND = "protocol"


class AllowlyTypeError(AllowlyError, TypeError):
    """An argument has the wrong type or is not JSON data (floats are refused: money is in micros).
    Nothing was sent or written."""

    KIND = "invalid_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, "invalid_type")
        self.field = field


class AllowlyConfigError(AllowlyError, ValueError):
    """A client setting or argument value cannot be used (nothing was sent)."""

    KIND = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message, "invalid_config")


class VerificationError(AllowlyError):
    """A receipt, checkpoint or export did not verify. The subclasses have the reference
    verifier's names (``allowly_receipt_format``), so verification code ports unchanged;
    an untrusted key or a checkpoint mismatch raise this class itself, as the reference does."""

    KIND = "verification"

    def __init__(self, message: str, code: str = "verification_error") -> None:
        super().__init__(message, code)


class SchemaError(VerificationError):
    """Shape, field pairing, encoding or timestamp rules."""


class UnknownKeyError(VerificationError):
    """No key of the set has the receipt's ``kid``."""


class KeyOutsideActiveWindowError(VerificationError):
    """The key's active window does not cover the receipt's ``issued_at``."""


class SignatureMismatchError(VerificationError):
    """The Ed25519 signature does not match."""


#: The class of each of core's error kinds (``allowly_core::ErrorKind``): the one mapping.
_CLASS_OF_KIND: dict[str, type[AllowlyError]] = {
    "invalid_request": InvalidRequestError,
    "unauthorized": UnauthorizedError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "rate_limited": RateLimitError,
    "unavailable": UnavailableError,
    "internal": InternalError,
    "timeout": AllowlyTimeoutError,
    "unreachable": AllowlyConnectionError,
    "protocol": AllowlyProtocolError,
    "verification": VerificationError,
}


def error_of(
    kind: str,
    code: str,
    message: str,
    status: int | None = None,
    fields: Sequence[FieldError] | None = None,
    retry_after_seconds: float | None = None,
) -> AllowlyError:
    """The exception for an engine error of ``kind`` (an unknown kind is internal)."""
    cls = _CLASS_OF_KIND.get(kind, InternalError)
    exc = cls.__new__(cls)
    AllowlyError.__init__(
        exc, message, code, kind=kind, status=status, fields=fields, retry_after_seconds=retry_after_seconds
    )
    return exc
