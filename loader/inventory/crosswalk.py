"""Technique-id crosswalks (an old release's ids -> the new release's), read from the shapes
Elastic publishes, plain mappings or a two-column CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

from queries.errors import InvalidInput
from queries.technique_index import Crosswalk, CrosswalkEntry

from .techniques import normalize_technique_id

_MAX_CROSSWALK_BYTES = 5 * 1024 * 1024


def load_crosswalk(path: Path | str) -> Crosswalk:
    """Read a technique-id crosswalk. Accepted shapes (YAML or JSON, or CSV):

    - Elastic's version map (``etc/attack-version-maps/attack_v18_to_v19.yaml``):
      ``techniques:`` / ``subtechniques:`` mapping an old id to ``{id, name}`` (or null: dropped);
    - Elastic's redirects (``etc/attack-technique-redirects.json``): ``{"mapping": {old: new}}``;
    - Elastic's ``attack-crosswalk.json``: a list of ``{old: [{id: new}], change-type}``;
    - a plain mapping ``{old: new}`` or ``{old: [new, ...]}``;
    - a CSV with two columns (old, new), with or without a header.
    """
    p = Path(path).expanduser()
    shown = str(p)
    if not p.is_file():
        raise InvalidInput(f"crosswalk file does not exist: {shown}")
    if p.stat().st_size > _MAX_CROSSWALK_BYTES:
        raise InvalidInput(f"crosswalk file {shown}: over 5 MB")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"crosswalk file {shown}: cannot read ({exc})") from None
    return parse_crosswalk(text, source=shown, csv_hint=p.suffix.lower() in {".csv", ".tsv"})


def parse_crosswalk(text: str, *, source: str = "crosswalk", csv_hint: bool = False) -> Crosswalk:
    """:func:`load_crosswalk` on text."""
    entries: list[CrosswalkEntry] = []
    data: Any = None
    if not csv_hint:
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (yaml.YAMLError, RecursionError) as exc:
            raise InvalidInput(f"crosswalk {source}: not YAML/JSON ({_one_line(exc)})") from None
    if csv_hint or isinstance(data, str):
        entries = _csv_entries(text, source)
    elif isinstance(data, dict) and any(k in data for k in ("techniques", "subtechniques")):
        for key in ("techniques", "subtechniques"):
            block = data.get(key) or {}
            if not isinstance(block, dict):
                raise InvalidInput(f"crosswalk {source}: '{key}' must be a mapping")
            for src, target in block.items():
                if isinstance(target, dict):
                    _add(entries, src, target.get("id"), target.get("name"), source)
                elif isinstance(target, str):
                    _add(entries, src, target, None, source)
    elif isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        for src, dst in data["mapping"].items():
            for d in dst if isinstance(dst, list) else [dst]:
                _add(entries, src, d, None, source)
    elif isinstance(data, list):
        for item in data:
            if not isinstance(item, dict):
                continue
            for src, targets in item.items():
                if src == "change-type" or not isinstance(targets, list):
                    continue
                for t in targets:
                    if isinstance(t, dict):
                        _add(entries, src, t.get("id"), None, source)
    elif isinstance(data, dict):
        for src, dst in data.items():
            for d in dst if isinstance(dst, list) else [dst]:
                if isinstance(d, dict):
                    _add(entries, src, d.get("id"), d.get("name"), source)
                else:
                    _add(entries, src, d, None, source)
    else:
        raise InvalidInput(f"crosswalk {source}: not a mapping of technique ids")
    entries = [e for e in dict.fromkeys(entries) if e.src != e.dst]
    if not entries:
        raise InvalidInput(f"crosswalk {source}: no technique id pairs found")
    return Crosswalk(source=source, entries=entries)


def _add(entries: list[CrosswalkEntry], src: Any, dst: Any, name: Any, source: str) -> None:
    a = normalize_technique_id(src) if isinstance(src, str) else None
    b = normalize_technique_id(dst) if isinstance(dst, str) else None
    if a and b:
        entries.append(CrosswalkEntry(a, b, name.strip() if isinstance(name, str) else None))


def _csv_entries(text: str, source: str) -> list[CrosswalkEntry]:
    entries: list[CrosswalkEntry] = []
    first = text.lstrip().split("\n", 1)[0]
    delimiter = max(",;\t|", key=first.count)
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        if len(row) >= 2:
            _add(entries, row[0], row[1], row[2] if len(row) > 2 else None, source)
    return entries


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())[:200]
