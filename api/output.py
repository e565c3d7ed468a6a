"""Printing data the way users ask for it: ``--format table|json|csv``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


class LazyConsole:
    """A rich Console made at its first use: a command printing JSON or CSV never imports rich
    (a tenth of the CLI's start-up)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(real_console(self), name)  # type: ignore[arg-type]


def real_console(console: Console) -> Console:
    """The rich Console itself, for rich objects that keep one (a progress bar)."""
    if not isinstance(console, LazyConsole):
        return console
    if console.console is None:
        from rich.console import Console

        console.console = Console(**console.options)
    return console.console


# The CLI's two consoles. Markup and highlighting are off: what is printed is data (names, rule
# titles, IOCs, Cypher with [u:USES], install hints like 'ttpgraph[plot]'), never read as rich
# markup. Styles are given as Text spans (bold(), styled()).
out: Console = LazyConsole(markup=False, highlight=False)  # type: ignore[assignment]
err: Console = LazyConsole(stderr=True, markup=False, highlight=False)  # type: ignore[assignment]


@contextmanager
def step(text: str) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; elsewhere (a log, CI, a pipe) the same words as plain lines.
    Yields a function that replaces the words (a new line when not on a terminal)."""
    if err.is_terminal:
        with err.status(text) as status:
            yield lambda message: status.update(message)
    else:  # whole lines, never wrapped at the console's width: a log reads them as written
        err.print(text, soft_wrap=True)
        yield lambda message: err.print(message, soft_wrap=True)


def bold(text: str) -> Text:
    from rich.text import Text

    return Text(text, style="bold")


def styled(*parts: str | Text | tuple[str, str]) -> Text:
    """One line from plain strings, Text spans and (text, style) pairs; nothing is markup."""
    from rich.text import Text

    return Text.assemble(*parts)


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


JSON_OPTIONS = (
    orjson.OPT_INDENT_2
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME  # str() as before, through default=str
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def write_json(data: Any) -> None:
    """``data`` as indented JSON (UTF-8) and a newline on stdout: orjson, a hundred times
    faster than ``json.dumps(indent=2)``, which falls back to pure Python when indenting."""
    raw = orjson.dumps(data, default=str, option=JSON_OPTIONS) + b"\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a stream without bytes underneath (a test's StringIO)
        sys.stdout.write(raw.decode())
        return
    sys.stdout.flush()
    buffer.write(raw)
    buffer.flush()


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


# Tables fit the terminal unless --wide: short columns (ids, counts) are never broken, long
# ones are cut with an ellipsis to one line per row, and columns that still do not fit are left
# out (named on stderr). --wide prints every column with every cell in full.
WIDE = False
SHORT = 16  # a column whose cells and header are at most this wide is kept whole
MIN_LONG = 12  # the narrowest a long column is cut to


def _natural(header: str, cells: list[str]) -> int:
    return max([len(header), *(len(c) for c in cells)])


def fit_columns(natural: Sequence[int], width: int, *, overhead: int = 3) -> tuple[int, list[int]]:
    """How many leading columns fit in ``width`` and the width of each.

    Short columns keep their natural width; long ones start at ``MIN_LONG`` and the rest of the
    line goes to them from the left, each up to its natural width.
    ``overhead`` is what a column costs besides its text (rich's padding and border)."""
    n = len(natural)
    while n > 1:
        mins = [w if w <= SHORT else min(w, MIN_LONG) for w in natural[:n]]
        if sum(mins) + overhead * n + 1 <= width:
            break
        n -= 1
    chosen = [w if w <= SHORT else min(w, MIN_LONG) for w in natural[:n]]
    spare = width - overhead * n - 1 - sum(chosen)
    # What is left goes to the long columns from the left: callers put the columns that matter
    # most first (a name before its reasons).
    for i in range(n):
        extra = max(0, min(spare, natural[i] - chosen[i]))
        chosen[i] += extra
        spare -= extra
    return n, chosen


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
        write_json(to_jsonable(data))
        return
    table_rows = [to_jsonable(r) for r in (rows if rows is not None else data)]
    cols = list(columns) if columns else (list(table_rows[0].keys()) if table_rows else [])
    if fmt == Format.csv:
        sys.stdout.write(csv_text(cols, ([r.get(c) for c in cols] for r in table_rows)))
        return
    from rich.table import Table
    from rich.text import Text

    con = console or out
    # Cells and titles are data (rule names, descriptions, IOCs): plain text, never markup.
    table = Table(title=Text(title) if title else None, show_lines=False, header_style="bold")
    cells = [[_cell(r.get(c)) for c in cols] for r in table_rows]
    if WIDE:
        for c in cols:
            table.add_column(Text(c), overflow="fold")
        for row in cells:
            table.add_row(*[Text(v) for v in row])
        con.print(table)
        return
    flat = [[" ".join(v.split()) for v in row] for row in cells]
    natural = [_natural(c, [row[i] for row in flat]) for i, c in enumerate(cols)]
    n, widths = fit_columns(natural, con.width)
    for c, w in zip(cols[:n], widths, strict=True):
        table.add_column(Text(c), width=w, no_wrap=True, overflow="ellipsis")
    for row in flat:
        table.add_row(*[Text(v) for v in row[:n]])
    con.print(table)
    if n < len(cols):
        err.print(f"({', '.join(cols[n:])} left out to fit {con.width} columns: --wide shows all)")
