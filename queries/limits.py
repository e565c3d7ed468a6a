"""Limits every reader of an untrusted file shares: JSON parsed without recursion errors, and
nesting bounded before any recursive code (validation, serialisation) walks it.

Python's JSON reader recurses once per nesting level and stops at the interpreter's recursion
limit with a ``RecursionError`` (a 500 over HTTP, a 2,000-line traceback in the CLI, before);
real files nest a handful of levels. ``MAX_NESTING`` is far above any real layer, STIX bundle,
MISP event or rule file, and far below Python's limit.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidInput

MAX_NESTING = 100
_CONTAINERS = (dict, list, tuple)


def check_nesting(data: Any, where: str, limit: int = MAX_NESTING) -> None:
    """Refuse (``InvalidInput`` naming ``where`` and the limit) data nested deeper than
    ``limit`` lists/objects. Iterative, one level at a time: linear in the data, no recursion
    (and cheap: it runs on every object of a million-object bundle)."""
    if not isinstance(data, _CONTAINERS):
        return
    level: list[Any] = [data]
    depth = 0
    while True:
        inner = []
        for value in level:
            for child in value.values() if isinstance(value, dict) else value:
                if isinstance(child, _CONTAINERS):
                    inner.append(child)
        if not inner:
            return
        depth += 1
        if depth >= limit:
            raise InvalidInput(f"{where}: nested deeper than {limit} levels")
        level = inner


def loads(text: str | bytes, where: str, limit: int = MAX_NESTING) -> Any:
    """``json.loads`` that answers ``InvalidInput`` (naming the limit) for documents nested
    deeper than ``limit``, instead of a ``RecursionError``."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidInput(f"{where}: nested deeper than {limit} levels") from None
    check_nesting(data, where, limit)
    return data
