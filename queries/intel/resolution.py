"""What the analyst names, resolved: techniques (ids or names), the organisation's clusters,
actors (an ATT&CK group or a cluster), and the observed set (techniques or an incident)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from ..catalog import Q
from ..errors import InvalidInput, NotFound
from ..graph import Graph
from ..resolve import TECHNIQUE_ID, Resolved, norm, resolve, resolve_group
from .common import CLUSTER_ID, MAX_OBSERVED, read_quietly
from .models import ActorKind


def split_ids(values: Iterable[str] | str | None) -> list[str]:
    """``T1059.001,T1566.001 T1105`` (commas, spaces, repeated options) -> a list."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out.extend(p for p in re.split(r"[,;\s]+", v or "") if p)
    return out


def resolve_techniques(graph: Graph, texts: list[str]) -> list[Resolved]:
    """Technique ids or names (one query); a revoked id resolves to its replacement, with a
    note. Unknown: NotFound naming it; deprecated without replacement: InvalidInput."""
    if len(texts) > MAX_OBSERVED:
        raise InvalidInput(f"at most {MAX_OBSERVED} techniques, got {len(texts)}")
    if texts and all(isinstance(t, str) and TECHNIQUE_ID.match(t.strip()) for t in texts):
        fast = _resolve_ids(graph, [t.strip().upper() for t in texts])
        if fast is not None:
            return fast
    rows = read_quietly(graph, Q.technique_candidates, include_retired=True)
    by_id = {r["attack_id"]: r for r in rows if r["attack_id"]}
    out: dict[str, Resolved] = {}
    for text in texts:
        r = resolve(rows, text, kind="technique", id_pattern=TECHNIQUE_ID)
        row = by_id.get(r.attack_id) or {}
        if row.get("deprecated") or (row.get("revoked") and r.matched != "replacement"):
            raise InvalidInput(f"technique {r.attack_id} is retired in ATT&CK (no replacement)")
        out.setdefault(r.attack_id, r)
    return list(out.values())


def _resolve_ids(graph: Graph, ids: list[str]) -> list[Resolved] | None:
    """ATT&CK technique ids looked up directly (one small query); None when one is unknown or
    retired, so the caller takes the full path (close matches, the error message)."""
    rows = read_quietly(graph, Q.intel_attack_lookup, stix_ids=[], attack_ids=ids)
    found = {r["attack_id"]: r for r in rows if r["kind"] == "Technique"}
    out: dict[str, Resolved] = {}
    for tid in ids:
        r = found.get(tid)
        if r is None or r["deprecated"] or (r["revoked"] and not r["replaced_by"]):
            return None
        if r["revoked"]:
            note = f"{tid} was revoked; replaced by {r['new_attack_id']}"
            out.setdefault(r["new_attack_id"], Resolved(r["new_attack_id"], r["new_name"],
                                                        "replacement", note))  # fmt: skip
        else:
            out.setdefault(tid, Resolved(tid, r["name"], "id"))
    return list(out.values())


def cluster_rows(graph: Graph) -> list[dict[str, Any]]:
    """The organisation's clusters (current imports), as resolving and ``SAME_AS`` read them."""
    return read_quietly(graph, Q.intel_cluster_candidates, include_retired=False)


def _match_clusters(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    wanted = norm(text)
    by_id = [r for r in rows if r["stix_id"].lower() == wanted]
    if by_id:
        return by_id
    for field in ("name", "aliases", "external_id"):
        hits = [
            r
            for r in rows
            if (field == "aliases" and any(norm(a) == wanted for a in r["aliases"]))
            or (field != "aliases" and r[field] and norm(r[field]) == wanted)
        ]
        if hits:
            return hits
    return []


def resolve_cluster(graph: Graph, text: str) -> Resolved:
    """One of the organisation's clusters by STIX id, name, alias or its own external id.
    ``attack_id`` of the answer is the cluster's STIX id."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("empty cluster name")
    rows = cluster_rows(graph)
    hits = _match_clusters(rows, text)
    ids = sorted({r["stix_id"] for r in hits})
    if len(ids) > 1:
        raise InvalidInput(
            f"ambiguous: cluster {text!r} matches {len(ids)} clusters; use a STIX id",
            suggestions=[f"{r['stix_id']} ({r['name']}, {r['source']})" for r in hits],
        )
    if not ids:
        names = {norm(n): r["name"] for r in rows for n in [r["name"], *r["aliases"]]}
        close = difflib.get_close_matches(norm(text), list(names), n=5, cutoff=0.6)
        raise NotFound(
            f"no cluster of the organisation named {text!r}",
            suggestions=list(dict.fromkeys(names[c] for c in close)),
        )
    sources = sorted({r["source"] for r in hits})
    return Resolved(
        ids[0], hits[0]["name"], "cluster", f"the organisation's cluster ({', '.join(sources)})"
    )


def resolve_cluster_keys(graph: Graph, text: str) -> tuple[list[str], str]:
    """Keys of every copy of a cluster (one per import holding it) and its name."""
    r = resolve_cluster(graph, text)
    keys = [row["key"] for row in cluster_rows(graph) if row["stix_id"] == r.attack_id]
    return keys, r.name


def resolve_actor(graph: Graph, text: str) -> tuple[Resolved, ActorKind]:
    """An ATT&CK group (id, name, alias) or, failing that, one of the organisation's clusters."""
    if isinstance(text, str) and CLUSTER_ID.match(text.strip()):
        return resolve_cluster(graph, text.strip()), "org-cluster"
    try:
        r = resolve_group(graph, text)
    except NotFound as first:
        try:
            return resolve_cluster(graph, text), "org-cluster"
        except NotFound:
            raise first from None
    if CLUSTER_ID.match(r.attack_id):  # resolve_group that knows clusters
        return r, "org-cluster"
    return r, "attack-group"


def observed_techniques(
    graph: Graph, techniques: list[str] | None, incident: str | None
) -> tuple[list[str], str | None, list[str]]:
    """(technique ids, incident name, notes) from a list or an incident/report name."""
    if techniques and incident:
        raise InvalidInput("give observed techniques or an incident, not both")
    if incident:
        rows = read_quietly(graph, Q.intel_incident_techniques, name=incident.strip())
        if not rows:
            known = [r["name"] for r in read_quietly(graph, Q.intel_incidents, limit=1000)]
            close = difflib.get_close_matches(incident, known, n=5, cutoff=0.5)
            raise NotFound(f"no incident or report named {incident!r}", suggestions=close)
        if len({r["stix_id"] for r in rows}) > 1:
            raise InvalidInput(
                f"ambiguous: {incident!r} names {len(rows)} incidents or reports; use a STIX id",
                suggestions=[f"{r['stix_id']} ({r['source']})" for r in rows],
            )
        ids = sorted({t for r in rows for t in r["techniques"]})
        if not ids:
            raise InvalidInput(f"{rows[0]['kind']} {rows[0]['name']!r} names no ATT&CK technique")
        return ids, rows[0]["name"], []
    texts = split_ids(techniques)
    if not texts:
        raise InvalidInput("give at least one observed technique (or an incident)")
    resolved = resolve_techniques(graph, texts)
    return [r.attack_id for r in resolved], None, [r.note for r in resolved if r.note]
