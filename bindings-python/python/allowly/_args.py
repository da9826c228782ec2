"""Argument checks and small conversions shared by the sync and async clients. Types only: every
rule about values (limits, formats, decisions) is the engine's."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from ._errors import AllowlyTypeError

_MISSING: Any = object()


def text(value: Any, name: str) -> str:
    if type(value) is not str:
        raise AllowlyTypeError(f"`{name}` must be a string, not {type(value).__name__}", name)
    return value


def opt_text(value: Any, name: str) -> str | None:
    return None if value is None else text(value, name)


def integer(value: Any, name: str) -> int:
    # bool is an int subclass: refused, like floats (money is integer micros).
    if type(value) is not int:
        raise AllowlyTypeError(f"`{name}` must be an integer, not {type(value).__name__}", name)
    if not -(2**63) <= value < 2**63:
        raise AllowlyTypeError(f"`{name}` is out of the 64-bit integer range", name)
    return value


def opt_integer(value: Any, name: str) -> int | None:
    return None if value is None else integer(value, name)


def boolean(value: Any, name: str) -> bool:
    if type(value) is not bool:
        raise AllowlyTypeError(f"`{name}` must be a bool, not {type(value).__name__}", name)
    return value


def strings(value: Any, name: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise AllowlyTypeError(f"`{name}` must be a list of strings, not {type(value).__name__}", name)
    for i, item in enumerate(value):
        if type(item) is not str:
            raise AllowlyTypeError(f"`{name}[{i}]` must be a string, not {type(item).__name__}", f"{name}[{i}]")
    return list(value)


def mapping(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise AllowlyTypeError(f"`{name}` must be a dict, not {type(value).__name__}", name)
    return value


def alias(primary: Any, secondary: Any, primary_name: str, secondary_name: str, *, required: bool = True) -> Any:
    """``scopes=`` for ``actions=``, ``bundle_id=`` for ``policy_id=``: one of the two, not both."""
    if primary is not _MISSING and secondary is not _MISSING:
        raise AllowlyTypeError(f"pass `{primary_name}` or its alias `{secondary_name}`, not both", primary_name)
    if primary is not _MISSING:
        return primary
    if secondary is not _MISSING:
        return secondary
    if required:
        raise AllowlyTypeError(f"missing required argument `{primary_name}`", primary_name)
    return None


def timestamp(value: datetime | str | None, name: str) -> str | None:
    """A datetime (aware, or naive meaning UTC) as the wire's ``YYYY-MM-DDTHH:MM:SS.sssZ``."""
    if value is None or type(value) is str:
        return value
    if not isinstance(value, datetime):
        raise AllowlyTypeError(f"`{name}` must be a datetime or a string, not {type(value).__name__}", name)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def default_home() -> str:
    return os.environ.get("ALLOWLY_HOME") or os.path.join(os.getcwd(), ".allowly")


def fallback_modes(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AllowlyTypeError("`fallback_by_action` must be a dict of action -> mode", "fallback_by_action")
    for action, mode in value.items():
        text(action, "fallback_by_action")
        text(mode, f"fallback_by_action.{action}")
    return dict(value)


def timeout_ms(value: Any, name: str) -> int:
    """Seconds (int or float) as positive milliseconds."""
    if type(value) not in (int, float):
        raise AllowlyTypeError(f"`{name}` must be a number of seconds, not {type(value).__name__}", name)
    return max(1, int(value * 1000))
