"""The Cypher catalog: one question per ``queries/cypher/*.cypher`` file.

Each file starts with a header::

    // name: techniques_used_by_group
    // doc: Techniques a group uses directly.
    // params: group_id, limit
    // example: {"group_id": "G0016", "limit": 100}

The ``example`` line (JSON) gives parameters an analyst can paste as ``:param`` lines in Neo4j
Browser, and that the catalog test runs the query with. The loader checks that the name equals
the file stem and that the declared parameters equal the ``$parameters`` the text uses, so a
file can be pasted into Neo4j Browser after ``:param`` lines.

Cypher has no include, and each file must run as-is in Neo4j Browser, so a definition several
questions share (the path kinds that tie an actor to a technique) is written out in each of them
between ``// paths: begin NAME`` and ``// paths: end`` lines; :func:`load_catalog` refuses a
catalog in which two copies of the same block differ, so the definition cannot drift.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CYPHER_DIR = Path(__file__).parent / "cypher"

_HEADER = re.compile(r"^//\s*(name|doc|params|example)\s*:\s*(.*)$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BLOCK_BEGIN = re.compile(r"^//\s*paths:\s*begin\s+([A-Za-z_][A-Za-z0-9_]*)")
_BLOCK_END = re.compile(r"^//\s*paths:\s*end\s*$")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class CypherQuery:
    name: str
    doc: str
    params: tuple[str, ...]
    text: str
    path: Path
    example: dict[str, Any] | None = None
    blocks: tuple[tuple[str, str], ...] = ()  # (block name, its text) shared with other files

    def browser_params(self) -> str:
        """``:param`` lines for Neo4j Browser, from the example."""
        return "\n".join(f":param {k} => {json.dumps(v)}" for k, v in (self.example or {}).items())

    def __str__(self) -> str:
        return self.text


def code_only(text: str) -> str:
    """Cypher text with its comments left out and each string or quoted name as ``''`` (line
    breaks kept): what names labels, keys and parameters."""
    out: list[str] = []
    i, n = 0, len(text)
    start = 0
    while i < n:
        c = text[i]
        if c in "'\"`":
            out.append(text[start:i] + "''")
            i += 1
            while i < n and text[i] != c:
                i += 2 if text[i] == "\\" else 1
            i += 1
            start = i
        elif text.startswith("//", i):
            out.append(text[start:i])
            end = text.find("\n", i)
            i = start = n if end < 0 else end
        elif text.startswith("/*", i):
            out.append(text[start:i] + " ")
            end = text.find("*/", i + 2)
            i = start = n if end < 0 else end + 2
        else:
            i += 1
    out.append(text[start:])
    return "".join(out)


def params_used(text: str) -> set[str]:
    """``$parameters`` in Cypher text, outside strings, quoted names and comments."""
    return set(_PARAM.findall(code_only(text)))


def parse_file(path: Path) -> CypherQuery:
    text = path.read_text(encoding="utf-8")
    header: dict[str, str] = {}
    for line in text.splitlines():
        m = _HEADER.match(line.strip())
        if not m:
            if line.strip().startswith("//") or not line.strip():
                continue
            break
        header[m.group(1)] = m.group(2).strip()
    for key in ("name", "doc", "params"):
        if key not in header:
            raise CatalogError(f"{path.name}: header line '// {key}:' is missing")
    if header["name"] != path.stem:
        raise CatalogError(f"{path.name}: header name {header['name']!r} != file stem")
    declared = tuple(p.strip() for p in header["params"].split(",") if p.strip())
    used = params_used(text)
    if set(declared) != used:
        raise CatalogError(
            f"{path.name}: declared params {sorted(declared)} != used params {sorted(used)}"
        )
    example = None
    if "example" in header:
        try:
            example = json.loads(header["example"])
        except ValueError as exc:
            raise CatalogError(f"{path.name}: example is not JSON ({exc})") from None
        if not isinstance(example, dict) or set(example) != set(declared):
            raise CatalogError(f"{path.name}: example must give exactly the declared params")
    return CypherQuery(
        header["name"], header["doc"], declared, text, path, example, shared_blocks(text, path)
    )


def shared_blocks(text: str, path: Path) -> tuple[tuple[str, str], ...]:
    """The ``// paths: begin NAME`` ... ``// paths: end`` blocks of a file, each line stripped
    of its indentation (a copy may sit at another depth)."""
    out: list[tuple[str, str]] = []
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        begin = _BLOCK_BEGIN.match(stripped)
        if begin:
            if name is not None:
                raise CatalogError(f"{path.name}: block {name!r} is not closed before {stripped}")
            name, lines = begin.group(1), []
        elif _BLOCK_END.match(stripped):
            if name is None:
                raise CatalogError(f"{path.name}: '// paths: end' without a begin")
            out.append((name, "\n".join(lines)))
            name = None
        elif name is not None:
            lines.append(stripped)
    if name is not None:
        raise CatalogError(f"{path.name}: block {name!r} has no '// paths: end'")
    return tuple(out)


def check_shared_blocks(queries: dict[str, CypherQuery]) -> dict[str, list[str]]:
    """Block name -> the queries carrying it; CatalogError naming a copy that differs from the
    others (from the most common text, when there are more than two copies)."""
    copies: dict[str, dict[str, list[str]]] = {}  # block -> text -> queries
    for q in queries.values():
        for block, body in q.blocks:
            copies.setdefault(block, {}).setdefault(body, []).append(q.name)
    for block, texts in copies.items():
        if len(texts) == 1:
            continue
        ranked = sorted(texts.items(), key=lambda kv: -len(kv[1]))
        reference, ref_names = ranked[0]
        body, names = ranked[1]
        a, b = reference.splitlines(), body.splitlines()
        i = next(
            (k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        raise CatalogError(
            f"{names[0]}.cypher: block {block!r} differs from {ref_names[0]}.cypher at its line "
            f"{i + 1}: one definition, copied word for word"
        )
    return {
        block: sorted(n for names in texts.values() for n in names)
        for block, texts in copies.items()
    }


def load_catalog(folder: Path = CYPHER_DIR) -> dict[str, CypherQuery]:
    queries = {p.stem: parse_file(p) for p in sorted(folder.glob("*.cypher"))}
    check_shared_blocks(queries)
    return queries


class _Catalog:
    """Attribute access to the queries: ``Q.techniques_used_by_group``. A query asked for by
    name is read from its own file (a CLI question parses one file, not the whole catalog);
    :func:`load_catalog` (the catalog test, the warm-up) checks the files against each other."""

    def __init__(self) -> None:
        self._queries: dict[str, CypherQuery] | None = None
        self._read: dict[str, CypherQuery] = {}

    @property
    def all(self) -> dict[str, CypherQuery]:
        if self._queries is None:
            self._queries = load_catalog()
        return self._queries

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        query = (self._queries or self._read).get(name)
        if query is None:
            path = CYPHER_DIR / f"{name}.cypher"
            if self._queries is not None or not path.is_file():
                raise AttributeError(f"no Cypher file named {name}.cypher")
            query = self._read[name] = parse_file(path)
        return query.text


Q = _Catalog()
