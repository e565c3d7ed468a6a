"""What the questions about the organisation's intelligence share: reading without "label does
not exist" warnings, the clusters' technique sets, a technique's display name."""

from __future__ import annotations

import re
from typing import Any

from ..actors import path_kinds
from ..catalog import Q
from ..graph import Graph, neo4j_errors

CLUSTER_ID = re.compile(r"^(intrusion-set|threat-actor)--[0-9a-f-]{36}$", re.I)
MAX_OBSERVED = 500


def read_quietly(graph: Graph, query: str, **params: Any) -> list[dict[str, Any]]:
    """``graph.read`` without Neo4j's "label / relationship type / property does not exist"
    notifications: the organisation's labels (OrgCluster, Indicator...) exist only once
    something was imported, and a question naming them before that simply finds nothing -
    not worth a warning on every call."""
    import neo4j

    def work(tx: neo4j.ManagedTransaction) -> list[dict[str, Any]]:
        return [r.data() for r in tx.run(query, params)]

    if graph.timeout:
        work = neo4j.unit_of_work(timeout=graph.timeout)(work)
    with (
        neo4j_errors(),
        graph.driver.session(
            database=graph.database,
            default_access_mode=neo4j.READ_ACCESS,
            notifications_disabled_classifications=["UNRECOGNIZED"],
        ) as session,
    ):
        return session.execute_read(work)


TechniqueSets = dict[str, tuple[str, dict[str, list[str]]]]


def cluster_technique_sets(
    graph: Graph,
    cluster_ids: list[str],
    *,
    include_software: bool = False,
    domain: str | None = None,
) -> dict[str, tuple[str, dict[str, list[str]], list[str]]]:
    """cluster STIX id -> (name, technique id -> path kinds, sources). Empty list: every one."""
    rows = read_quietly(
        graph,
        Q.intel_cluster_technique_sets,
        cluster_ids=cluster_ids,
        kinds=path_kinds(include_software),
        domain=domain,
    )
    return {
        r["cluster_id"]: (
            r["name"],
            {t["technique_id"]: t["kinds"] for t in r["techniques"]},
            r["sources"],
        )
        for r in rows
    }


def technique_name(details: dict[str, dict[str, Any]], tid: str) -> str:
    """A technique's name from its details (``Parent: Sub`` for a sub-technique), else its id."""
    d = details.get(tid) or {}
    if d.get("parent_name"):
        return f"{d['parent_name']}: {d['name']}"
    return d.get("name") or tid
