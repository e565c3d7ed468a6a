"""Values as rule files write them: scalars as text, one-line messages, lists, booleans.

Containers are never turned into text (see :func:`scalar_str`)."""

from __future__ import annotations

from typing import Any


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and control characters; cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def scalar_str(value: object) -> str | None:
    """A scalar as text (str, int, float); ``None`` for containers, bools and nulls.

    Containers are refused on purpose: YAML aliases can make a small file describe a huge
    nested structure, so nothing here ever calls ``str()`` on one.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def as_list(value: object) -> list[Any]:
    """A list as is, a single scalar as a one-item list, anything else as empty."""
    if isinstance(value, list):
        return value
    if scalar_str(value) is not None:
        return [value]
    return []


def id_or(value: object, fallback: str) -> str:
    """A stripped scalar id, or ``fallback`` when it is missing or blank."""
    return (scalar_str(value) or "").strip() or fallback


def truthy(value: object) -> bool:
    """Splunk/CSV style booleans: ``1``, ``true``, ``yes``, ``on``, ``t``, ``y`` (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "t", "y"}
    return False


def falsy(value: object) -> bool:
    """Explicitly false (as opposed to absent): ``0``, ``false``, ``no``, ``off``, ``f``, ``n``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, str):
        return value.strip().lower() in {"0", "false", "no", "off", "f", "n"}
    return False


def type_name(value: object) -> str:
    if value is None:
        return "null"
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
