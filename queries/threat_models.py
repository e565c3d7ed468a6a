"""Saved threat models: a name for "these actors, held against this inventory, with these
filters", stored in the graph beside the inventories and kept apart from MITRE's data.

A threat model is what the organisation defends against. Saving one lets every analysis be asked
by name (``ttpgraph threat-model gaps NAME``, ``GET /api/v1/threat-models/{name}/gaps``) and lets
a release diff say how each saved model's coverage changes (``queries.releases.model_change``).

Model::

    (:ThreatModel {name, description, actor_ids, actor_names, actor_weights, inventory,
                   platforms, domain, include_software, partial_counts_as_covered,
                   created, updated})
      -[:INCLUDES {weight}]->(:Group or :OrgCluster)
      -[:HELD_AGAINST]->(:Inventory)

The properties are what the analyses read; the edges, drawn when the model is saved, are for
looking at it in Neo4j Browser (an inventory deleted later takes its edge with it).

Actors are resolved when the model is saved (ids, names, aliases, revoked ids -> replacement)
and stored by ATT&CK id (or, for the organisation's own clusters, STIX id) with their weight.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from typing import Any

from neo4j import ManagedTransaction
from pydantic import BaseModel, Field

from .cache import THREAT_MODELS, bump_graph_version
from .catalog import Q
from .coverage import (
    check_domain,
    check_inventory,
    check_platforms,
    resolve_actors,
)
from .errors import InvalidInput, NotFound
from .graph import Graph, neo4j_errors

MAX_NAME = 100
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")
SCHEMA = (
    "CREATE CONSTRAINT threat_model_name IF NOT EXISTS FOR (n:ThreatModel) REQUIRE n.name IS UNIQUE"
)
# Writes stay out of the query catalog (its queries are the read-only ones analysts run).
_SAVE = (
    "MERGE (m:ThreatModel {name: $props.name}) ON CREATE SET m.created = $now "
    "SET m += $props, m.updated = $now"
)
_DELETE = "MATCH (m:ThreatModel {name: $name}) DETACH DELETE m"
# Edges for looking at a model in Neo4j Browser, drawn when it is saved (the properties above
# are what the analyses read): the groups or own clusters it includes, the inventory.
_LINKS = (
    "MATCH (m:ThreatModel {name: $name})-[r:INCLUDES|HELD_AGAINST]->() DELETE r",
    "MATCH (m:ThreatModel {name: $name}) UNWIND $actors AS a "
    "MATCH (g:Group {attack_id: a.id}) WHERE NOT g.revoked AND NOT g.deprecated "
    "CREATE (m)-[:INCLUDES {weight: a.weight}]->(g)",
    "MATCH (m:ThreatModel {name: $name}) UNWIND $actors AS a "
    "MATCH (g:$('OrgCluster') {stix_id: a.id}) CREATE (m)-[:INCLUDES {weight: a.weight}]->(g)",
    "MATCH (m:ThreatModel {name: $name}), (i:Inventory {name: $inventory}) "
    "CREATE (m)-[:HELD_AGAINST]->(i)",
)


class ModelActor(BaseModel):
    group_id: str = Field(description="ATT&CK group id, or the STIX id of an own cluster")
    name: str
    weight: float = 1.0


class ThreatModel(BaseModel):
    name: str
    description: str = ""
    actors: list[ModelActor]
    inventory: str | None = Field(
        default=None, description="the inventory the model is held against (None: none yet)"
    )
    platforms: list[str] = Field(default_factory=list, description="lower-case platform filter")
    domain: str | None = Field(default=None, description="domain filter (None: every domain)")
    include_software: bool = False
    partial_counts_as_covered: bool = False
    created: str = ""
    updated: str = ""

    def actor_weights(self) -> dict[str, float]:
        return {a.group_id: a.weight for a in self.actors}

    def gap_args(self) -> dict[str, Any]:
        """Keyword arguments for ``coverage.gap_analysis`` and the other analyses."""
        if not self.inventory:
            raise InvalidInput(
                f"threat model {self.name!r} names no inventory: save it with one first"
            )
        return {
            "actors": self.actor_weights(),
            "inventory": self.inventory,
            "platforms": self.platforms or None,
            "domain": self.domain,
            "include_software": self.include_software,
            "partial_counts_as_covered": self.partial_counts_as_covered,
        }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("threat model name is empty")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"threat model name longer than {MAX_NAME} characters")
    if not _NAME_OK.match(name):
        raise InvalidInput("threat model name contains control characters")
    return name


def _from_row(row: dict[str, Any]) -> ThreatModel:
    n = row["m"]
    ids, names = list(n.get("actor_ids") or []), list(n.get("actor_names") or [])
    weights = list(n.get("actor_weights") or [1.0] * len(ids))
    return ThreatModel(
        name=n["name"],
        description=n.get("description") or "",
        actors=[
            ModelActor(group_id=i, name=nm, weight=w)
            for i, nm, w in zip(ids, names, weights, strict=False)
        ],
        inventory=n.get("inventory"),
        platforms=list(n.get("platforms") or []),
        domain=n.get("domain"),
        include_software=bool(n.get("include_software")),
        partial_counts_as_covered=bool(n.get("partial_counts_as_covered")),
        created=n.get("created") or "",
        updated=n.get("updated") or "",
    )


def list_threat_models(graph: Graph) -> list[ThreatModel]:
    """Every saved threat model, by name."""
    return [_from_row(r) for r in graph.read(Q.threat_model_list, limit=10_000)]


def get_threat_model(graph: Graph, name: str) -> ThreatModel:
    """One saved threat model; :class:`NotFound` with close names when there is none."""
    name = check_name(name)
    rows = graph.read(Q.threat_model_get, name=name)
    if not rows:
        names = [m.name for m in list_threat_models(graph)]
        raise NotFound(
            f"no threat model named {name!r}",
            suggestions=difflib.get_close_matches(name, names, n=5, cutoff=0.5) or names[:5],
        )
    return _from_row(rows[0])


def save_threat_model(
    graph: Graph,
    *,
    name: str,
    actors: list[str] | dict[str, float],
    inventory: str | None = None,
    platforms: list[str] | None = None,
    domain: str | None = None,
    include_software: bool = False,
    partial_counts_as_covered: bool = False,
    description: str = "",
) -> ThreatModel:
    """Create or replace a threat model. Actors must resolve and the inventory (if given) must
    exist; nothing is written otherwise."""
    name = check_name(name)
    if not isinstance(description, str) or len(description) > 2000:
        raise InvalidInput("description: a text of at most 2,000 characters")
    refs = resolve_actors(graph, actors)
    inv = None
    if inventory is not None and str(inventory).strip():
        inv = check_inventory(graph, inventory)["name"]
    props = {
        "name": name,
        "description": description,
        "actor_ids": [a.group_id for a in refs],
        "actor_names": [a.name for a in refs],
        "actor_weights": [a.weight for a in refs],
        "inventory": inv,
        "platforms": check_platforms(platforms),
        "domain": check_domain(domain),
        "include_software": bool(include_software),
        "partial_counts_as_covered": bool(partial_counts_as_covered),
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    included = [{"id": a.group_id, "weight": a.weight} for a in refs]

    def work(tx: ManagedTransaction) -> None:
        tx.run(_SAVE, props=props, now=now).consume()
        for stmt in _LINKS:
            tx.run(stmt, name=name, actors=included, inventory=inv).consume()
        bump_graph_version(tx, THREAT_MODELS)

    with neo4j_errors(), graph.driver.session(database=graph.database) as session:
        session.run(SCHEMA).consume()
        session.execute_write(work)
    graph.cache.clear()
    return get_threat_model(graph, name)


def delete_threat_model(graph: Graph, name: str) -> None:
    """Delete a saved threat model; :class:`NotFound` when there is none of that name."""
    get_threat_model(graph, name)

    def work(tx: ManagedTransaction) -> None:
        tx.run(_DELETE, name=check_name(name)).consume()
        bump_graph_version(tx, THREAT_MODELS)

    with neo4j_errors(), graph.driver.session(database=graph.database) as session:
        session.execute_write(work)
    graph.cache.clear()


def adhoc_model(
    graph: Graph,
    actors: list[str],
    inventory: str | None = None,
    include_software: bool = False,
    name: str = "ad hoc",
) -> ThreatModel:
    """An unsaved threat model from actor arguments (``NAME=WEIGHT`` weighs) and an inventory."""
    from .coverage import parse_actor_args

    refs = resolve_actors(graph, parse_actor_args(actors))
    inv = check_inventory(graph, inventory)["name"] if inventory else None
    return ThreatModel(
        name=name,
        actors=[ModelActor(group_id=a.group_id, name=a.name, weight=a.weight) for a in refs],
        inventory=inv,
        include_software=include_software,
    )
