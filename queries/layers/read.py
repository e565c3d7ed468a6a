"""Reading layers people made.

:func:`read_layer` reads any 4.x layer a person made (4.0 to 4.5) into a :class:`ParsedLayer`; it
is lenient about what does not change the meaning (unknown keys, missing versions, old versions)
and records it in ``ParsedLayer.warnings``, and raises :class:`InvalidInput` with a one-line
message naming the place (``layer techniques[3]: techniqueID missing``) for anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from queries.errors import InvalidInput
from queries.limits import loads

from .check import Findings, check_layer
from .format import ParsedLayer

__all__ = ["read_layer", "read_layers"]


def _looks_like_path(text: str) -> bool:
    """A string is a path when it names a file, ends in .json or has a slash, and is one line."""
    if "\n" in text or len(text) > 4096 or text.lstrip().startswith(("{", "[")):
        return False
    if text.endswith(".json") or "/" in text or "\\" in text:
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _load_json(data: dict[str, Any] | list[Any] | str | bytes | Path) -> tuple[Any, str]:
    """Parse ``data`` (object, JSON text or bytes, or a path) and name it for messages."""
    if isinstance(data, dict | list):
        return data, "layer"
    label = "layer"
    if isinstance(data, str):
        data = data.removeprefix("\ufeff")
    if isinstance(data, Path) or (isinstance(data, str) and _looks_like_path(data)):
        path = Path(data)
        label = f"layer {path.name}"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{label}: cannot be read ({exc.strerror or exc})") from None
        data = raw
    if isinstance(data, bytes):
        try:
            if data.startswith((b"\xff\xfe", b"\xfe\xff")):
                # mitreattack-python's Layer.to_file writes UTF-16.
                text = data.decode("utf-16")
            else:
                text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(f"{label}: is not UTF-8 or UTF-16 text") from None
    elif isinstance(data, str):
        text = data
    else:
        raise InvalidInput(f"{label}: expected a layer object, JSON text or a file path")
    try:
        return loads(text, label), label
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{label}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def read_layers(data: dict[str, Any] | list[Any] | str | bytes | Path) -> list[ParsedLayer]:
    """Read a layer file that may hold one layer or a list of layers (4.5 allows both)."""
    obj, label = _load_json(data)
    items = obj if isinstance(obj, list) else [obj]
    if isinstance(obj, list) and not obj:
        raise InvalidInput(f"{label}: the list holds no layers")
    out = []
    for i, item in enumerate(items):
        prefix = f"{label} [{i}]" if isinstance(obj, list) else label
        f = Findings(prefix)
        parsed = check_layer(item, f)
        if f.errors or parsed is None:
            first = f.errors[0] if f.errors else f"{prefix}: not a Navigator layer"
            more = f" (and {len(f.errors) - 1} more)" if len(f.errors) > 1 else ""
            raise InvalidInput(first + more)
        parsed.warnings = f.lenient
        out.append(parsed)
    return out


def read_layer(data: dict[str, Any] | list[Any] | str | bytes | Path) -> ParsedLayer:
    """Read one Navigator layer of format 4.0 to 4.5 (as written by people or tools).

    ``data`` is a dict, JSON text, bytes, or a path (a ``Path``, or a one-line string that ends
    in ``.json``, holds a slash or names an existing file). UTF-8 (with or without BOM) and
    UTF-16 files are read. A file holding a list of one layer is accepted; use
    :func:`read_layers` for more. Anything that would change
    the meaning (wrong types, missing ``techniqueID``/``name``/``domain``, format 3.x or 5.x)
    raises :class:`InvalidInput` naming the place; the rest goes to ``warnings``.
    """
    layers = read_layers(data)
    if len(layers) != 1:
        raise InvalidInput(
            f"layer: the file holds {len(layers)} layers; read them with read_layers"
        )
    return layers[0]
