"""Printing data the way users ask for it: ``--format table|json|csv``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def to_jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [to_jsonable(x) for x in data]
    if isinstance(data, dict):
        return {k: to_jsonable(v) for k, v in data.items()}
    return data


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


# ---------------------------------------------------------------- CSV
#
# Cells are data (rule and incident names, IOCs, descriptions) and a spreadsheet runs a cell
# that starts with =, +, -, @, a tab or a carriage return as a formula ("=cmd|' /C calc'!A0",
# "=HYPERLINK(...)"). As OWASP recommends (CSV Injection), such a cell is prefixed with a single
# quote and the cell is quoted. Numbers (int and float values) are left as they are: -1.5 is a
# number to a spreadsheet, not a formula, and stays sortable. Every CSV ttpgraph writes goes
# through csv_safe / csv_text (no API route answers CSV).

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """One CSV cell's text, neutralised when a spreadsheet would run it (numbers excepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = _cell(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return _cell(value)


def _csv_field(text: str) -> str:
    if text.startswith("'") or any(c in text for c in ',"\r\n\t'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header and rows as CSV (RFC 4180 quoting), every cell through ``csv_safe``."""
    lines = [",".join(_csv_field(csv_safe(c)) for c in columns)]
    lines += [",".join(_csv_field(csv_safe(v)) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def emit(
    data: Any,
    fmt: Format,
    *,
    rows: Iterable[dict[str, Any]] | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    console: Console | None = None,
) -> None:
    """Print ``data`` as JSON, or ``rows`` (default: data itself) as a table or CSV."""
    if fmt == Format.json:
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, default=str) + "\n")
        return
    table_rows = [to_jsonable(r) for r in (rows if rows is not None else data)]
    cols = list(columns) if columns else (list(table_rows[0].keys()) if table_rows else [])
    if fmt == Format.csv:
        sys.stdout.write(csv_text(cols, ([r.get(c) for c in cols] for r in table_rows)))
        return
    # Cells and titles are data (rule names, descriptions, IOCs): plain text, never markup.
    table = Table(title=escape(title) if title else None, show_lines=False, header_style="bold")
    for c in cols:
        table.add_column(escape(c), overflow="fold")
    for r in table_rows:
        table.add_row(*[Text(_cell(r.get(c))) for c in cols])
    (console or Console()).print(table)
