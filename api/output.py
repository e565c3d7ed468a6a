"""Printing data the way users ask for it: ``--format table|json|csv``."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def to_jsonable(data: Any) -> Any:
    from pydantic import BaseModel

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
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        for r in table_rows:
            writer.writerow([_cell(r.get(c)) for c in cols])
        sys.stdout.write(buf.getvalue())
        return
    # Cells and titles are data (rule names, descriptions, IOCs): plain text, never markup.
    table = Table(title=escape(title) if title else None, show_lines=False, header_style="bold")
    for c in cols:
        table.add_column(escape(c), overflow="fold")
    for r in table_rows:
        table.add_row(*[Text(_cell(r.get(c))) for c in cols])
    (console or Console()).print(table)
