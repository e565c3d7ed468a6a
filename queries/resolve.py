"""Resolve what an analyst types — an ATT&CK id, a name or an alias — to one ATT&CK id."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from .catalog import Q
from .errors import InvalidInput, NotFound
from .graph import Graph

GROUP_ID = re.compile(r"^G\d{4}$", re.I)
SOFTWARE_ID = re.compile(r"^S\d{4}$", re.I)
TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$", re.I)


@dataclass(frozen=True)
class Resolved:
    attack_id: str
    name: str
    matched: str  # what matched: "id", "name", "alias", "replacement"
    note: str | None = None


def norm(text: str) -> str:
    """``text`` as names are compared: trimmed, lower-case, white space collapsed."""
    return re.sub(r"\s+", " ", text.strip().lower())


def resolve(
    rows: list[dict[str, Any]], text: str, *, kind: str, id_pattern: re.Pattern[str]
) -> Resolved:
    """``text`` among candidate ``rows`` (``attack_id``, ``name``, ``aliases``...): an ATT&CK id
    (a revoked one answers its replacement), else a name or an alias; NotFound with close
    matches, InvalidInput when ambiguous."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"empty {kind} name")
    if len(text) > 200:
        raise InvalidInput(f"{kind} name longer than 200 characters")
    wanted = norm(text)
    by_id = {r["attack_id"].lower(): r for r in rows if r["attack_id"]}
    if id_pattern.match(text.strip()):
        row = by_id.get(wanted)
        if row is None:
            raise NotFound(f"no {kind} with ATT&CK id {text.strip().upper()}")
        if row.get("revoked") and row.get("replaced_by"):
            new = by_id.get(row["replaced_by"].lower())
            if new is not None:
                return Resolved(
                    new["attack_id"],
                    new["name"],
                    "replacement",
                    f"{row['attack_id']} was revoked; replaced by {new['attack_id']}",
                )
        return Resolved(row["attack_id"], row["name"], "id")
    current = [r for r in rows if not r.get("revoked") and not r.get("deprecated")]
    exact = [r for r in current if norm(r["name"]) == wanted]
    if len(exact) == 1:
        return Resolved(exact[0]["attack_id"], exact[0]["name"], "name")
    aliased = [
        r
        for r in current
        if any(norm(a) == wanted for a in (r.get("aliases") or []))
        or (r.get("parent_name") and norm(f"{r['parent_name']}: {r['name']}") == wanted)
    ]
    matches = {r["attack_id"]: r for r in exact + aliased}
    if len(matches) == 1:
        row = next(iter(matches.values()))
        return Resolved(row["attack_id"], row["name"], "alias")
    if len(matches) > 1:
        choices = ", ".join(f"{r['attack_id']} ({r['name']})" for r in matches.values())
        raise InvalidInput(
            f"ambiguous: {kind} {text!r} matches {choices}; use an ATT&CK id",
            suggestions=sorted(matches),
        )
    names: dict[str, str] = {}
    for r in current:
        for n in [r["name"], *(r.get("aliases") or [])]:
            names.setdefault(norm(n), f"{r['name']} ({r['attack_id']})")
    close = difflib.get_close_matches(wanted, list(names), n=5, cutoff=0.6)
    contains = [k for k in names if wanted in k and k not in close][: 5 - len(close)]
    suggestions = list(dict.fromkeys(names[c] for c in close + contains))
    raise NotFound(f"no {kind} named {text!r}", suggestions=suggestions)


def resolve_group(graph: Graph, text: str) -> Resolved:
    """ATT&CK id (G0016), name (APT29) or alias (Cozy Bear), case-insensitive; failing that, a
    cluster of the organisation (STIX id, name, alias: its ``attack_id`` is the STIX id)."""
    return resolve_groups(graph, [text])[0]


def resolve_software(graph: Graph, text: str) -> Resolved:
    """ATT&CK id (S0154), name (Cobalt Strike) or alias, case-insensitive."""
    rows = graph.read(Q.software_candidates, include_retired=True)
    return resolve(rows, text, kind="software", id_pattern=SOFTWARE_ID)


def resolve_technique(graph: Graph, text: str) -> Resolved:
    """ATT&CK id (T1059.001), name (PowerShell) or "Parent: Sub" name, case-insensitive."""
    rows = graph.read(Q.technique_candidates, include_retired=True)
    return resolve(rows, text, kind="technique", id_pattern=TECHNIQUE_ID)


def resolve_groups(graph: Graph, texts: list[str]) -> list[Resolved]:
    """Several groups at once, each resolved as ``resolve_group`` says.

    One query through the indexes (ATT&CK ids; names and aliases by full-text phrase) finds
    the candidates; a text they do not answer exactly goes the long way — every group, the
    organisation's clusters, close matches — so the answer and the message are the same."""
    rows = graph.read(Q.group_lookup, words=group_words(texts))
    return _resolve_among(graph, rows, texts)


def _resolve_among(graph: Graph, rows: list[dict[str, Any]], texts: list[str]) -> list[Resolved]:
    every: list[dict[str, Any]] | None = None
    out = []
    for text in texts:
        try:
            out.append(resolve(rows, text, kind="group", id_pattern=GROUP_ID))
        except NotFound:
            if every is None:
                every = graph.read(Q.group_candidates, include_retired=True)
            out.append(_group_or_cluster(graph, every, text))
    return out


def read_for_groups(
    graph: Graph, query: str, texts: list[str], **params: Any
) -> tuple[list[Resolved], list[dict[str, Any]]]:
    """``query``'s rows for the groups ``texts`` name, and those groups as ``resolve_groups``
    resolves them - in one round trip when they are what they look like.

    ``query`` carries the ``groups_named`` block: given the words it looks the candidates up
    (as ``group_lookup``) and answers for the groups it guesses they name (an id's group, a
    current group named or aliased so) beside its ``group_ids``. Here the words are resolved
    from those candidates; when the guess is not what they resolve to (a cluster's name, a name
    that is one group's and another's alias...), they are resolved the long way and the query
    asked again with their ids."""
    rows = graph.read(query, group_ids=[], words=group_words(texts), **params)
    head = rows[0] if rows else {"candidates": [], "guessed": []}
    try:
        resolved = [
            resolve(head["candidates"], t, kind="group", id_pattern=GROUP_ID) for t in texts
        ]
    except NotFound:
        resolved = []
    if resolved and {r.attack_id for r in resolved} == set(head["guessed"]):
        return resolved, rows
    resolved = _resolve_among(graph, head["candidates"], texts)
    ids = list(dict.fromkeys(r.attack_id for r in resolved))
    return resolved, graph.read(query, group_ids=ids, words=NO_WORDS, **params)


NO_WORDS: dict[str, list[str]] = {"ids": [], "phrases": [], "texts": []}


def group_words(texts: list[str]) -> dict[str, list[str]]:
    """The ``words`` parameter of the queries carrying the ``groups_named`` block: ATT&CK ids,
    the other texts as names are compared (``texts``: :func:`norm`, which the loads store on
    each group as ``name_key``), and for each of those a Lucene phrase on names and aliases
    (``phrases``; only ``\\`` and ``"`` mean something inside a phrase), which the block looks
    up only for a text that is not one current group's name. Texts ``resolve`` refuses are
    left out: it names them."""
    ids: list[str] = []
    named: list[str] = []
    for text in texts:
        if not isinstance(text, str) or not text.strip() or len(text) > 200:
            continue
        if GROUP_ID.match(text.strip()):
            ids.append(text.strip().upper())
        else:
            named.append(norm(text))
    phrases = [
        f'(name:"{p}" OR aliases_text:"{p}")'
        for p in (t.replace("\\", "\\\\").replace('"', '\\"') for t in named)
    ]
    return {"ids": ids, "phrases": phrases, "texts": named}


def _group_or_cluster(graph: Graph, rows: list[dict[str, Any]], text: str) -> Resolved:
    """ATT&CK first: what resolved before still resolves the same way. Only a text no ATT&CK
    group answers to is looked up among the organisation's clusters
    (queries/intel/resolution.py)."""
    try:
        return resolve(rows, text, kind="group", id_pattern=GROUP_ID)
    except NotFound as not_attack:
        from .intel.resolution import resolve_cluster

        try:
            return resolve_cluster(graph, text)
        except NotFound:
            raise not_attack from None
