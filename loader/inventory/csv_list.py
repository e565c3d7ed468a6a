"""Plain CSV/TSV inventories and plain lists of technique ids, read as a stream."""

from __future__ import annotations

import codecs
import csv
import re
import stat
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import check_input
from .model import (
    ACTIVE,
    BUILDING_BLOCK,
    DEPRECATED,
    DISABLED,
    EXPERIMENTAL,
    HUNTING,
    TEST,
    UNKNOWN,
    UNSUPPORTED,
    ParsedInventory,
    ParseIssue,
    Rule,
    RuleStream,
    new_inventory,
)
from .techniques import normalize_technique_id
from .values import falsy, one_line, truthy

_CSV_TECHNIQUE_COLUMNS = (
    "technique",
    "techniqueid",
    "techniques",
    "techniqueids",
    "attackid",
    "attacktechnique",
    "attacktechniqueid",
    "attckid",  # "ATT&CK ID"
    "attcktechnique",
    "attcktechniqueid",
    "mitreattackid",
    "mitreattack",
    "mitretechnique",
    "mitretechniqueid",
    "mitreid",
    "ttp",
    "ttps",
)
_CSV_NAME_COLUMNS = ("rule", "rulename", "name", "title", "detection", "detectionname", "testname")
_CSV_ID_COLUMNS = ("id", "ruleid", "detectionid", "uuid", "guid", "testguid")
_CSV_STATUS_COLUMNS = ("status", "state", "maturity", "enabled")
_CSV_STATUS = {
    "active": ACTIVE,
    "enabled": ACTIVE,
    "production": ACTIVE,
    "prod": ACTIVE,
    "stable": ACTIVE,
    "deployed": ACTIVE,
    "available": ACTIVE,
    "test": TEST,
    "testing": TEST,
    "validation": TEST,
    "experimental": EXPERIMENTAL,
    "development": EXPERIMENTAL,
    "dev": EXPERIMENTAL,
    "beta": EXPERIMENTAL,
    "preview": EXPERIMENTAL,
    "draft": EXPERIMENTAL,
    "deprecated": DEPRECATED,
    "retired": DEPRECATED,
    "removed": DEPRECATED,
    "unsupported": UNSUPPORTED,
    "building_block": BUILDING_BLOCK,
    "disabled": DISABLED,
    "inactive": DISABLED,
    "hunting": HUNTING,
}
_CELL_SPLIT = re.compile(r"[,;|\s]+")


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _pick(columns: dict[str, str], candidates: tuple[str, ...]) -> str | None:
    for cand in candidates:
        if cand in columns:
            return columns[cand]
    return None


MAX_CSV_BYTES = 8 * 1024 * 1024 * 1024
"""A CSV inventory is read as a stream (never held whole): this only guards against a device
file or a runaway export."""

_NUL_ERROR = "binary file (contains NUL bytes)"


class _Nul(Exception):
    pass


def _lines(fh: Any) -> Iterator[str]:
    """The file's lines, refusing NUL bytes (a binary file)."""
    for line in fh:
        if "\x00" in line:
            raise _Nul
        yield line


def _skip_preamble(lines: Iterator[str]) -> str | None:
    """Drop leading blank and ``#`` comment lines; the first line that is neither."""
    for line in lines:
        if line.strip() and not line.startswith("#"):
            return line
    return None


def _decode_error(path: Path, exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8 (read again in bytes: only on this error path)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            pending = dec.getstate()[0]
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as e:
                data = pending + chunk
                at = offset - len(pending) + e.start
                return f"not UTF-8 text: byte 0x{data[e.start]:02x} at offset {at}"
            offset += len(chunk)
    return one_line(f"not UTF-8 text: {exc.reason}")


def stream_csv(path: Path) -> RuleStream:
    """:func:`parse_csv` as a stream: the file is read twice (the first pass checks it and
    finds rule ids used by several rows, the second yields rules), never held whole, so an
    inventory of millions of rows is read in constant memory; rows repeating an id are merged
    as :func:`parse_csv` does and come last."""
    path = check_input(path, file_only=True)
    stream = RuleStream("csv", str(path), iter(()))
    rel = path.name
    try:
        st = path.stat()
    except OSError as exc:
        stream.issues.append(ParseIssue(rel, f"cannot read: {exc.strerror or exc}"))
        return stream
    if not stat.S_ISREG(st.st_mode):
        stream.issues.append(ParseIssue(rel, "not a regular file"))
        return stream
    if st.st_size > MAX_CSV_BYTES:
        stream.issues.append(ParseIssue(rel, f"skipped: {st.st_size} bytes, over the 8 GB limit"))
        return stream
    layout = _csv_first_pass(path, rel, stream.issues)
    if layout is not None:
        stream.rules = _csv_rules(path, rel, layout, stream)
    return stream


@dataclass
class _CsvLayout:
    delimiter: str
    tech: int | None
    """Column index of the technique ids; None: a plain list of ids."""
    name: int | None = None
    rule_id: int | None = None
    status: int | None = None
    enabled: bool = False
    """The status column is an ``enabled`` flag."""
    repeated: frozenset[int] = frozenset()
    """Hashes of the rule ids more than one row uses."""

    def cell(self, row: list[str], index: int | None) -> str:
        if index is None or index >= len(row):
            return ""
        return row[index].strip()

    def rule_id_of(self, row: list[str], n: int) -> str:
        return self.cell(row, self.rule_id) or self.cell(row, self.name) or f"row {n}"


def _open_text(path: Path) -> Any:
    return path.open("r", encoding="utf-8-sig", newline="")


def _column(fields: list[str], columns: dict[str, str], candidates: tuple[str, ...]) -> int | None:
    """Index of the first candidate column (the last column of that name, as a dict keeps)."""
    name = _pick(columns, candidates)
    if name is None:
        return None
    return max(i for i, f in enumerate(fields) if f == name)


def _csv_first_pass(path: Path, rel: str, issues: list[ParseIssue]) -> _CsvLayout | None:
    """Check the whole file (UTF-8, no NUL, valid CSV), read its header, and find the rule
    ids used by several rows. None (with an issue) when it cannot be used."""
    try:
        with _open_text(path) as fh:
            lines = _lines(fh)
            first = _skip_preamble(lines)
            if first is None:
                issues.append(ParseIssue(rel, "empty file"))
                return None
            header = first.rstrip("\r\n")
            delimiter = max(",;\t|", key=header.count)
            reader = csv.reader(_chain(first, lines), delimiter=delimiter)
            fields = next(reader, [])
            columns = {_header_key(h): h for h in fields}
            tech = _column(fields, columns, _CSV_TECHNIQUE_COLUMNS)
            if tech is None:
                if any(c in header.strip().rstrip(",;") for c in ",;\t|"):
                    issues.append(
                        ParseIssue(
                            rel,
                            one_line(
                                f"no technique column (technique, technique_id, ...) in: {header}"
                            ),
                        )
                    )
                    return None
                for _ in lines:  # a plain list: only check the rest of the file
                    pass
                return _CsvLayout(delimiter, None)
            status = _column(fields, columns, _CSV_STATUS_COLUMNS)
            layout = _CsvLayout(
                delimiter,
                tech,
                _column(fields, columns, _CSV_NAME_COLUMNS),
                _column(fields, columns, _CSV_ID_COLUMNS),
                status,
                status is not None and _header_key(fields[status]) == "enabled",
            )
            hashes = array("q")
            n = 1
            for row in reader:
                if row:
                    n += 1
                    hashes.append(hash(layout.rule_id_of(row, n)))
    except _Nul:
        issues.append(ParseIssue(rel, _NUL_ERROR))
        return None
    except UnicodeDecodeError as exc:
        issues.append(ParseIssue(rel, _decode_error(path, exc)))
        return None
    except csv.Error as exc:
        issues.append(ParseIssue(rel, one_line(f"invalid CSV: {exc}")))
        return None
    except OSError as exc:
        issues.append(ParseIssue(rel, f"cannot read: {exc.strerror or exc}"))
        return None
    layout.repeated = _repeated(hashes)
    return layout


def _repeated(hashes: array) -> frozenset[int]:
    """The values that occur more than once (sorted in place: 8 bytes a row)."""
    import numpy as np

    if len(hashes) < 2:
        return frozenset()
    values = np.frombuffer(hashes, dtype=np.int64).copy()
    values.sort()
    dup = values[1:][values[1:] == values[:-1]]
    return frozenset(int(v) for v in np.unique(dup))


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first.lstrip()
    yield from rest


def _csv_rules(path: Path, rel: str, layout: _CsvLayout, stream: RuleStream) -> Iterator[Rule]:
    ignored: set[str] = set()
    try:
        with _open_text(path) as fh:
            lines = _lines(fh)
            first = _skip_preamble(lines) or ""
            if layout.tech is None:
                yield from _plain_list(_chain(first, lines), rel, ignored)
            else:
                reader = csv.reader(_chain(first, lines), delimiter=layout.delimiter)
                next(reader, None)
                yield from _csv_table(reader, rel, layout, ignored, stream.notes)
    finally:
        stream.ignored_ids = sorted(ignored)


def _csv_table(
    reader: Iterator[list[str]],
    rel: str,
    layout: _CsvLayout,
    ignored: set[str],
    notes: list[str],
) -> Iterator[Rule]:
    held: dict[str, Rule] = {}  # rules whose id other rows use too: merged, yielded last
    held_ids: dict[str, set[str]] = {}
    held_raw: dict[str, dict[str, None]] = {}
    dupes = 0
    known: dict[str, str | None] = {}  # token -> technique id (a few thousand distinct tokens)
    cell = layout.cell
    n = 1
    for row in reader:
        if not row:
            continue
        n += 1
        if not any(c.strip() for c in row):
            continue
        ids: set[str] = set()
        raw_seen: dict[str, None] = {}  # an ordered set: a cell of many ids stays linear
        for token in _CELL_SPLIT.split(cell(row, layout.tech)):
            if token in known:
                tid = known[token]
            else:
                tid = known[token] = normalize_technique_id(token)
            if tid is not None:
                ids.add(tid)
                raw_seen.setdefault(token)
            elif any(c.isdigit() for c in token):
                # an id-like reject; plain words next to ids ("T1059.001 PowerShell") are dropped
                ignored.add(one_line(token, 80))
        name = cell(row, layout.name)
        rule_id = layout.rule_id_of(row, n)
        raw_status = cell(row, layout.status)
        if layout.status is None:
            status = ACTIVE
        elif layout.enabled:
            status = ACTIVE if truthy(raw_status) else DISABLED if falsy(raw_status) else UNKNOWN
        else:
            status = _CSV_STATUS.get(raw_status.lower().replace(" ", "_"), UNKNOWN)
        rule = Rule(
            name=one_line(name or rule_id, 500),
            rule_id=rule_id,
            file=rel,
            status=status,
            techniques=sorted(ids),
            raw_tags=list(raw_seen),
            format="csv",
            raw_status=raw_status,
        )
        if hash(rule_id) not in layout.repeated:
            yield rule
            continue
        first_rule = held.get(rule_id)
        if first_rule is None:
            held[rule_id] = rule
            # merged as sets, ordered once at the end: a rule repeated on many rows stays linear
            held_ids[rule_id] = set(rule.techniques)
            held_raw[rule_id] = dict.fromkeys(rule.raw_tags)
            continue
        dupes += 1
        held_ids[rule_id].update(rule.techniques)
        for t in rule.raw_tags:
            held_raw[rule_id].setdefault(t)
    for rule_id, first_rule in held.items():
        first_rule.techniques = sorted(held_ids[rule_id])
        first_rule.raw_tags = list(held_raw[rule_id])
    yield from held.values()
    if dupes:
        notes.append(f"merged {dupes} rows repeating an earlier id")


def parse_csv(path: Path) -> ParsedInventory:
    """Parse a plain CSV/TSV inventory, or a plain list of technique ids (one per line).

    CSV: the header must name a technique column (matched ignoring case and punctuation:
    ``technique``, ``technique_id``, ``attack_id``, ``Technique #``, ``mitre_attack_id``,
    ``ttp``...); optional name (``rule``, ``name``, ``title``, ``Test Name``...), id (``id``,
    ``rule_id``, ``Test GUID``...) and status (``status``, ``state``, ``maturity``, ``enabled``)
    columns. A technique cell may hold several ids separated by ``, ; |`` or spaces. Rows with the
    same id (or, without an id column, the same name) are merged. Without a status column
    rules are ``active``.

    Plain list: no recognised header; every non-blank line not starting with ``#`` is an id; one
    ``active`` rule per distinct technique. Unrecognised values go to ``ignored_ids``.

    The whole inventory in memory; :func:`stream_csv` reads the same rules one at a time.
    """
    stream = stream_csv(path)
    inv = new_inventory("csv", Path(stream.root))
    inv.rules = list(stream.rules)
    inv.issues, inv.ignored_ids, inv.notes = stream.issues, stream.ignored_ids, stream.notes
    return inv


def _plain_list(lines: Iterator[str], rel: str, ignored: set[str]) -> Iterator[Rule]:
    stem = rel.rsplit(".", 1)[0]
    seen: dict[str, dict[str, None]] = {}  # id -> the spellings seen (an ordered set)
    for line in lines:
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        value = value.rstrip(",;")
        tid = normalize_technique_id(value)
        if tid is None:
            ignored.add(one_line(value, 80))
        else:
            seen.setdefault(tid, {}).setdefault(value)
    for tid in sorted(seen):
        yield Rule(
            name=f"{stem}: {tid}",
            rule_id=tid,
            file=rel,
            status=ACTIVE,
            techniques=[tid],
            raw_tags=list(seen[tid]),
            format="csv",
        )
