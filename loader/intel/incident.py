"""The quick incident form: a name, observed technique ids, optional IOCs."""

from __future__ import annotations

import time
import uuid

from queries.catalog import Q
from queries.errors import InvalidInput
from queries.graph import Graph
from queries.intel import ImportResult, resolve_techniques

from .common import NAMESPACE, OBSERVABLE, check_source, org_key, utc_now
from .iocs import guess_ioc
from .rows import Endpoint, IntelRows
from .write import import_result, write_intel


def incident_rows(
    graph: Graph,
    *,
    name: str,
    techniques: list[str],
    iocs: list[str] | None = None,
    description: str | None = None,
    first_seen: str | None = None,
) -> tuple[IntelRows, list[str]]:
    """A named set of observed techniques (+ IOCs) -> rows; notes on revoked techniques."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("incident name is empty")
    if len(name) > 200:
        raise InvalidInput("incident name longer than 200 characters")
    if not techniques:
        raise InvalidInput("an incident needs at least one observed technique")
    resolved = resolve_techniques(graph, techniques)
    rows = IntelRows(source=check_source(f"incident: {name}"), flavour="incident")
    stix_id = f"incident--{uuid.uuid5(NAMESPACE, name.lower())}"
    key = org_key(rows.source, stix_id)
    props = {
        "key": key,
        "stix_id": stix_id,
        "stix_type": "incident",
        "name": name,
        "description": description,
        "first_seen": first_seen,
        "technique_ids": [r.attack_id for r in resolved],
        "created": utc_now(),
        "revoked": False,
        "deprecated": False,
        "source": rows.source,
        "org": True,
        "imported_at": rows.imported_at,
    }
    rows.add_node("Incident", {k: v for k, v in props.items() if v is not None})
    stix_ids = {
        r["attack_id"]: r["stix_id"]
        for r in graph.read(
            Q.intel_attack_lookup, stix_ids=[], attack_ids=[r.attack_id for r in resolved]
        )
        if r["kind"] == "Technique"
    }
    for r in resolved:
        rows.add_edge("USES", key, Endpoint("attack", stix_ids[r.attack_id], "Technique"), {})
    for value in dict.fromkeys(iocs or []):
        stype, v = guess_ioc(value)
        oid = f"{stype}--{uuid.uuid5(NAMESPACE, stype + ':' + v)}"
        okey = org_key(rows.source, oid)
        rows.add_node(
            OBSERVABLE,
            {
                "key": okey,
                "stix_id": oid,
                "stix_type": stype,
                "name": v,
                "value": v,
                "values": [v.lower()],
                "revoked": False,
                "deprecated": False,
                "source": rows.source,
                "org": True,
                "imported_at": rows.imported_at,
            },
        )
        rows.add_edge("REFERS_TO", key, Endpoint("org", okey, OBSERVABLE), {})
    return rows, [r.note for r in resolved if r.note]


def create_incident(
    graph: Graph,
    *,
    name: str,
    techniques: list[str],
    iocs: list[str] | None = None,
    description: str | None = None,
    first_seen: str | None = None,
    replace: bool = False,
) -> ImportResult:
    """The quick form: a named incident with its observed techniques and optional IOCs.

    Its source is ``incident: NAME``; an existing incident of that name is a Conflict unless
    ``replace``."""
    t0 = time.perf_counter()
    rows, notes = incident_rows(
        graph,
        name=name,
        techniques=techniques,
        iocs=iocs,
        description=description,
        first_seen=first_seen,
    )
    replaced = write_intel(graph, rows, replace=replace)
    return import_result(rows, replaced, t0, notes)
