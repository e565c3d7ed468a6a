"""Inventories at scale, in small: the coverage an import stores answers exactly what the rules'
COVERS edges answer; one inventory's question costs the same whatever other inventories hold;
an import killed half-way, or refused by Neo4j's transaction memory limit, leaves the previous
inventory answering and nothing half-written that the next import does not remove.

Inventories written here are named ``t-scale-*`` and deleted at the end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loader.inventory.importer import BATCH, delete_inventory, import_inventory, reresolve_inventory
from loader.inventory.planner import ImportOptions
from loader.inventory_store import RULE_NAMES_CAP
from loader.load import load_file
from queries import coverage as C
from queries.catalog import Q
from queries.errors import ImportFailed
from queries.graph import Graph
from queries.settings import Settings

from .bundle_facts import ext_id, is_current, objects
from .conftest import ENTERPRISE, ICS_21, REPO, throwaway_server
from .test_inventory_import import CROSSWALK, SIGMA

PREFIX = "t-scale-"


def current_techniques(path: Path) -> list[str]:
    return sorted(
        ext_id(o)  # type: ignore[misc]
        for o in objects(path)
        if o["type"] == "attack-pattern" and is_current(o) and ext_id(o)
    )


def synthetic_csv(path: Path, rules: int, ids: list[str], *, seed: int = 14, pad: int = 0) -> Path:
    """``rules`` rules, each tagged with 1-3 of ``ids``; ``pad`` makes each rule id that long."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("rule_id,name,technique\n")
        for i in range(rules):
            rid = f"R-{i:06d}".ljust(pad, "x") if pad else f"R-{i:06d}"
            fh.write(f"{rid},rule {i:06d},{' '.join(rng.sample(ids, rng.randint(1, 3)))}\n")
    return path


def leftovers(graph: Graph, name: str) -> int:
    return graph.read(
        "MATCH (i:InventoryStaging|InventoryRetired {name: $n}) RETURN count(i) AS n", n=name
    )[0]["n"]


def rules_named(graph: Graph, name: str) -> int:
    return graph.read("MATCH (r:DetectionRule {inventory: $n}) RETURN count(r) AS n", n=name)[0][
        "n"
    ]


def from_covers(graph: Graph, name: str, query: str, **params: Any) -> list[dict[str, Any]]:
    """``query``'s answer computed from the COVERS edges (the stored coverage made invalid for
    the question, then restored)."""
    basis = graph.read("MATCH (i:Inventory {name: $n}) RETURN i.coverage_basis AS b", n=name)
    graph.write("MATCH (i:Inventory {name: $n}) SET i.coverage_basis = []", n=name)
    try:
        return graph.read(query, inventory=name, **params)
    finally:
        graph.write(
            "MATCH (i:Inventory {name: $n}) SET i.coverage_basis = $b", n=name, b=basis[0]["b"]
        )


@pytest.fixture(scope="module")
def cleanup(graph: Graph) -> Iterator[None]:
    yield
    for r in graph.read(
        "MATCH (i:Inventory) WHERE i.name STARTS WITH $p RETURN i.name AS n", p=PREFIX
    ):
        delete_inventory(graph, r["n"])


@pytest.fixture(scope="module")
def enterprise_ids() -> list[str]:
    return current_techniques(ENTERPRISE)


# --------------------------------------------------------------------------- stored coverage


@pytest.mark.parametrize(
    "options",
    [ImportOptions(), ImportOptions(parent_coverage="full"),
     ImportOptions(parent_coverage="none", subtechnique_coverage="none")],
    ids=["partial", "parent-full", "none"],
)  # fmt: skip
def test_stored_coverage_answers_what_the_covers_edges_answer(
    graph: Graph, cleanup: None, options: ImportOptions
) -> None:
    """Sigma's process-creation rules (v19 ids through the crosswalk, revoked ids, parents and
    sub-techniques): the three coverage queries from the stored coverage equal the same
    queries computed from the rules' COVERS edges."""
    name = PREFIX + "sigma-" + options.parent_coverage
    folder = SIGMA / "rules" / "windows" / "process_creation"
    import_inventory(graph, "sigma", folder, name=name, crosswalk=CROSSWALK, options=options)
    stored = graph.read(Q.coverage_inventory_rule_map, inventory=name)
    assert stored and any(r["partial_rules"] for r in stored) == (options.parent_coverage != "none")
    assert stored == from_covers(graph, name, Q.coverage_inventory_rule_map)
    ids = sorted({r["technique_id"] for r in stored} | {"T1001", "T1059"})
    asked = graph.read(Q.coverage_rules_for_techniques, inventory=name, technique_ids=ids)
    assert asked == from_covers(graph, name, Q.coverage_rules_for_techniques, technique_ids=ids)
    cov = graph.read(Q.inventory_coverage, inventory=name, domain=None, limit=100_000)
    assert cov == from_covers(graph, name, Q.inventory_coverage, domain=None, limit=100_000)
    # Many rules on one technique: the first names (by name), and the whole count.
    big = max(stored, key=lambda r: r["rule_count"] + r["partial_rule_count"])
    assert big["rule_count"] + big["partial_rule_count"] > RULE_NAMES_CAP
    assert len(big["rules"]) == min(RULE_NAMES_CAP, big["rule_count"])
    assert big["rules"] == sorted(big["rules"])


def test_the_queries_cap_names_as_the_import_does() -> None:
    for query in (Q.coverage_rules_for_techniques, Q.coverage_inventory_rule_map,
                  Q.inventory_coverage):  # fmt: skip
        assert f"rules[..{RULE_NAMES_CAP}]" in query


def test_answers_stay_right_after_a_release_load_and_reresolution(
    graph: Graph, cleanup: None, tmp_path: Path, enterprise_ids: list[str]
) -> None:
    """Loading a release makes the stored coverage stale: the answer comes from the COVERS
    edges until the inventory is re-resolved (same answer, from stored coverage again)."""
    name = PREFIX + "reload"
    import_inventory(
        graph, "csv", synthetic_csv(tmp_path / "r.csv", 300, enterprise_ids), name=name
    )
    before = C.inventory_coverage(graph, inventory=name)
    graph.write("MATCH (r:Release {domain: 'enterprise-attack'}) SET r.sha256 = 'x' + r.sha256")
    try:
        assert C.inventory_coverage(graph, inventory=name) == before  # from COVERS now
        result = reresolve_inventory(graph, name)
        assert result.summary["rules_unchanged"] == result.summary["rules"] == 300
        stored = graph.read(Q.coverage_inventory_rule_map, inventory=name)
        assert stored == from_covers(graph, name, Q.coverage_inventory_rule_map)
        assert C.inventory_coverage(graph, inventory=name) == before
    finally:
        graph.write(
            "MATCH (r:Release {domain: 'enterprise-attack'}) SET r.sha256 = substring(r.sha256, 1)"
        )
    assert leftovers(graph, name) == 0 and rules_named(graph, name) == 300


# --------------------------------------------------------------------------- scoping


def test_one_inventorys_question_does_not_read_the_others(
    graph: Graph, cleanup: None, tmp_path: Path, enterprise_ids: list[str]
) -> None:
    small = PREFIX + "small"
    import_inventory(
        graph, "csv", synthetic_csv(tmp_path / "s.csv", 20, enterprise_ids), name=small
    )
    ids = enterprise_ids[:: len(enterprise_ids) // 60]

    def hits() -> int:
        with graph.driver.session(database=graph.database) as s:
            profile = (
                s.run(
                    "PROFILE " + Q.coverage_rules_for_techniques, inventory=small, technique_ids=ids
                )
                .consume()
                .profile
            )

        def walk(plan: dict[str, Any]) -> int:
            return int(plan.get("dbHits", 0)) + sum(walk(c) for c in plan.get("children", []))

        return walk(profile)

    alone = hits()
    answer = graph.read(Q.coverage_rules_for_techniques, inventory=small, technique_ids=ids)
    big = synthetic_csv(tmp_path / "b.csv", 5000, enterprise_ids, seed=7)
    import_inventory(graph, "csv", big, name=PREFIX + "big")
    assert hits() == alone
    assert graph.read(Q.coverage_rules_for_techniques, inventory=small, technique_ids=ids) == answer


# --------------------------------------------------------------------------- killed imports

IMPORTER = """
import sys
from loader.inventory import importer as II
from queries.graph import Graph
from queries.settings import Settings
II.BATCH = int(sys.argv[5])
g = Graph.connect(Settings(neo4j_uri=sys.argv[1], neo4j_user="neo4j", neo4j_password=sys.argv[2]))
II.import_inventory(g, "csv", sys.argv[3], name=sys.argv[4])
"""


def test_a_killed_import_leaves_the_previous_inventory_answering(
    graph: Graph, settings: Settings, cleanup: None, tmp_path: Path, enterprise_ids: list[str]
) -> None:
    name = PREFIX + "killed"
    import_inventory(graph, "csv", synthetic_csv(tmp_path / "a.csv", 40, enterprise_ids), name=name)
    before = C.inventory_coverage(graph, inventory=name)
    big = synthetic_csv(tmp_path / "big.csv", 30_000, enterprise_ids, seed=3)
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, settings.neo4j_uri, settings.neo4j_password, str(big),
         name, "300"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        staged = 0
        while staged < 900 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            staged = graph.read(
                "MATCH (s:InventoryStaging {name: $n}) "
                "RETURN coalesce(sum(COUNT { (s)-[:HAS_RULE]->() }), 0) AS n",
                n=name,
            )[0]["n"]
        assert proc.poll() is None, "the import finished before it could be killed"
        assert staged >= 900
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Killed half-way: what it wrote is there, unseen; the previous inventory answers.
    assert leftovers(graph, name) == 1
    assert rules_named(graph, name) > 40
    assert C.inventory_coverage(graph, inventory=name) == before
    assert C.inventory_info(graph, inventory=name).rules == 40
    # The next import removes what the killed one left.
    again = import_inventory(graph, "csv", tmp_path / "a.csv", name=name).summary
    assert again["rules_unchanged"] == 40
    assert leftovers(graph, name) == 0 and rules_named(graph, name) == 40
    assert C.inventory_coverage(graph, inventory=name) == before


# --------------------------------------------------------------------------- memory limit


@pytest.fixture(scope="module")
def low_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Graph]]:
    """A Neo4j with the transaction memory pool at its minimum (10 MiB, against 1 GiB by
    default), holding ICS ATT&CK's techniques, tactics and matrix (the real objects: the whole
    bundle is over 10 MiB as one load transaction)."""
    home = tmp_path_factory.mktemp("low-memory")
    data = json.loads(ICS_21.read_text(encoding="utf-8"))
    keep = {"attack-pattern", "x-mitre-tactic", "x-mitre-matrix", "x-mitre-collection",
            "identity", "marking-definition"}  # fmt: skip
    objs = [o for o in data["objects"] if o["type"] in keep]
    ids = {o["id"] for o in objs}
    objs += [
        o
        for o in data["objects"]
        if o["type"] == "relationship" and o["source_ref"] in ids and o["target_ref"] in ids
    ]
    bundle = home / "ics-attack-18.1.json"
    bundle.write_text(json.dumps({**data, "objects": objs}), encoding="utf-8")
    conf = {"dbms.memory.transaction.total.max": "10m"}
    with throwaway_server(home / "neo4j", label="lowmem", conf=conf) as (_, settings):
        g = Graph.connect(settings)
        load_file(g, str(bundle))
        try:
            yield settings, g
        finally:
            g.close()


def test_batches_shrink_to_fit_the_transaction_memory_limit(
    low_memory: tuple[Settings, Graph], tmp_path: Path
) -> None:
    _, g = low_memory
    ids = current_techniques(ICS_21)
    # 3,000 rules of ~6 KB: a batch of 2,000 (BATCH) is over 10 MiB.
    path = synthetic_csv(tmp_path / "fat.csv", 3000, ids, pad=3000)
    s = import_inventory(g, "csv", path, name="fat").summary
    assert s["rules"] == 3000
    assert s["write_batch"] < BATCH
    expected: set[str] = set()
    for line in path.read_text().splitlines()[1:]:
        expected.update(line.rsplit(",", 1)[1].split())
    assert {
        t.technique_id for t in C.inventory_coverage(g, inventory="fat").techniques if t.rules
    } == (expected)


def test_a_batch_the_memory_limit_refuses_fails_in_one_line_and_changes_nothing(
    low_memory: tuple[Settings, Graph], tmp_path: Path
) -> None:
    settings, g = low_memory
    ids = current_techniques(ICS_21)
    import_inventory(g, "csv", synthetic_csv(tmp_path / "ok.csv", 10, ids), name="refused")
    before = C.inventory_coverage(g, inventory="refused")
    # Rule ids of 120 KB: even 50 rules (the smallest batch) are over 10 MiB.
    huge = synthetic_csv(tmp_path / "huge.csv", 120, ids, pad=120_000)
    t0 = time.monotonic()
    with pytest.raises(ImportFailed, match="transaction memory limit") as err:
        import_inventory(g, "csv", huge, name="refused")
    assert time.monotonic() - t0 < 25, "a refusal no retry can fix was retried"
    assert "\n" not in err.value.detail and "still answers" in err.value.detail
    assert C.inventory_coverage(g, inventory="refused") == before
    assert leftovers(g, "refused") == 0 and rules_named(g, "refused") == 10
    # The CLI: one error line on stderr (after plain progress lines), exit code 1, no traceback.
    env = {**os.environ, "PYTHONPATH": str(REPO), "NEO4J_URI": settings.neo4j_uri,
           "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": settings.neo4j_password}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "inventory", "import", "csv", str(huge), "--name",
         "refused"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "transaction memory limit" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert C.inventory_coverage(g, inventory="refused") == before
    assert json.dumps(before.model_dump())  # the answer is still whole
