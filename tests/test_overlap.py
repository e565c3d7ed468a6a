"""The actor-overlap network against the real graph, checked against technique sets computed
straight from the bundle JSON (all three domains) and from mitreattack-python (Enterprise).

Definition the expectations use (that of ``queries.actors.group_technique_sets``): a group's
techniques are those it USES directly and those USED by campaigns attributed to it; with
software, also those USED by software that the group, or a campaign attributed to it, USES
(as ``MitreAttackData.get_all_software_used_by_all_groups`` counts a group's software).
Revoked or deprecated objects and relationships are left out. Two groups are linked when
Jaccard (or the shared count) is at least the threshold; a node is a group with at least one
link.
"""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import networkx as nx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from queries import overlap
from queries.errors import InvalidInput, NotFound
from queries.graph import Graph
from queries.overlap import ExportFormat, Metric, build_network, overlap_network
from queries.settings import Settings

from .bundle_facts import by_stix_id, current_relationships, ext_id, is_current
from .conftest import SESSION_BUNDLES
from .test_cli import run_cli

# ---------------------------------------------------------------- the oracle


def bundle_technique_sets(
    paths: list[Path], *, include_software: bool = False, domain: str | None = None
) -> dict[str, set[str]]:
    """Group ATT&CK id -> technique ids, from the bundles (current objects and relationships)."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        objs = by_stix_id(path)
        uses: dict[str, set[str]] = defaultdict(set)
        attributed: dict[str, set[str]] = defaultdict(set)  # group -> campaigns
        for r in current_relationships(path):
            if r["relationship_type"] == "uses":
                uses[r["source_ref"]].add(r["target_ref"])
            elif r["relationship_type"] == "attributed-to" and r["source_ref"].startswith(
                "campaign--"
            ):
                attributed[r["target_ref"]].add(r["source_ref"])

        def techniques(source: str, uses=uses, objs=objs) -> set[str]:
            return {
                t
                for t in uses.get(source, ())
                if t.startswith("attack-pattern--")
                and (domain is None or domain in objs[t].get("x_mitre_domains", []))
            }

        for gid, g in objs.items():
            if g["type"] != "intrusion-set" or not is_current(g):
                continue
            found = set(techniques(gid))
            for c in attributed.get(gid, ()):
                found |= techniques(c)
            if include_software:
                # Software the group uses, or a campaign attributed to it uses.
                for user in {gid} | attributed.get(gid, set()):
                    for s in uses.get(user, ()):
                        if s.startswith(("malware--", "tool--")):
                            found |= techniques(s)
            if found:
                out[ext_id(g) or gid] |= {ext_id(objs[t]) or t for t in found}
    return dict(out)


def expected_edges(
    sets: dict[str, set[str]], threshold: float, metric: str = "jaccard"
) -> dict[tuple[str, str], tuple[float, int, set[str]]]:
    """(a, b) with a < b -> (jaccard, shared, shared techniques), for pairs at the threshold."""
    out = {}
    for a, b in combinations(sorted(sets), 2):
        common = sets[a] & sets[b]
        if not common:
            continue
        j = len(common) / len(sets[a] | sets[b])
        if (j if metric == "jaccard" else len(common)) >= threshold:
            out[(a, b)] = (j, len(common), common)
    return out


@pytest.fixture(scope="module")
def sets_all() -> dict[str, set[str]]:
    return bundle_technique_sets(SESSION_BUNDLES)


def with_read_key(settings: Settings, folder: Path) -> tuple[Settings, str]:
    """The session settings with API keys in ``folder`` and one read key (auth on, as shipped)."""
    from api.auth import KeyStore

    keyed = settings.model_copy(
        update={"ttpgraph_api_auth": True, "ttpgraph_api_keys_file": str(folder / "keys.json")}
    )
    _, token = KeyStore(folder / "keys.json").create(role="read", name="overlap tests")
    return keyed, token


@pytest.fixture(scope="module")
def client(graph: Graph, settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    keyed, token = with_read_key(settings, tmp_path_factory.mktemp("keys"))
    with TestClient(create_app(keyed), headers={"X-API-Key": token}) as c:
        yield c


def _edges(net: overlap.OverlapNetwork) -> dict[tuple[str, str], overlap.OverlapEdge]:
    return {(e.source, e.target): e for e in net.edges}


# ---------------------------------------------------------------- nodes and edges


@pytest.mark.parametrize("threshold", [0.2, 0.35])
def test_network_equals_the_pairs_computed_from_the_bundles(
    graph: Graph, sets_all: dict[str, set[str]], threshold: float
) -> None:
    net = overlap_network(graph, threshold=threshold)
    want = expected_edges(sets_all, threshold)
    linked = {g for pair in want for g in pair}
    assert net.node_count == len(linked) == len(net.nodes)
    assert {n.group_id for n in net.nodes} == linked
    assert net.groups_considered == len(sets_all)
    assert set(_edges(net)) == set(want)
    assert net.edge_count == len(want) > 0
    for pair, e in _edges(net).items():
        j, shared, common = want[pair]
        assert e.jaccard == pytest.approx(j, abs=1e-4)
        assert e.weight == e.jaccard
        assert e.shared == shared and set(e.shared_techniques) == common
    for n in net.nodes:
        assert n.technique_count == len(sets_all[n.group_id])
        assert n.degree == sum(1 for pair in want if n.group_id in pair)


def test_a_higher_threshold_keeps_fewer_groups(graph: Graph) -> None:
    counts = [overlap_network(graph, threshold=t).node_count for t in (0.1, 0.2, 0.3, 0.5)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


@pytest.mark.parametrize("include_software", [False, True])
def test_enterprise_network_matches_mitreattack_python(
    graph: Graph, mitre_data, include_software: bool
) -> None:
    def aid(obj) -> str:
        return obj.external_references[0].external_id

    def current(obj) -> bool:
        return not obj.get("revoked", False) and not obj.get("x_mitre_deprecated", False)

    every = mitre_data.get_all_techniques_used_by_all_groups()
    if include_software:
        software = mitre_data.get_all_software_used_by_all_groups()  # its own and its campaigns'
        by_software = mitre_data.get_all_techniques_used_by_all_software()
    sets = {}
    for g in mitre_data.get_groups(remove_revoked_deprecated=True):
        techs = {aid(e["object"]) for e in every.get(g.id, []) if current(e["object"])}
        if include_software:
            for s in software.get(g.id, []):
                if current(s["object"]):
                    techs |= {
                        aid(e["object"])
                        for e in by_software.get(s["object"].id, [])
                        if current(e["object"])
                    }
        if techs:
            sets[aid(g)] = techs
    threshold = 0.3
    net = overlap_network(
        graph, threshold=threshold, domain="enterprise", include_software=include_software
    )
    want = expected_edges(sets, threshold)
    assert net.node_count == len({g for pair in want for g in pair})
    assert set(_edges(net)) == set(want)
    assert net.groups_considered == len(sets)
    assert net.domain == "enterprise-attack"


def test_software_adds_techniques(graph: Graph) -> None:
    sets_sw = bundle_technique_sets(SESSION_BUNDLES, include_software=True)
    net = overlap_network(graph, threshold=0.3, include_software=True)
    want = expected_edges(sets_sw, 0.3)
    assert set(_edges(net)) == set(want)
    assert {n.group_id: n.technique_count for n in net.nodes} == {
        g: len(sets_sw[g]) for g in {x for pair in want for x in pair}
    }
    plain = overlap_network(graph, threshold=0.3)
    assert net.node_count > plain.node_count


def test_shared_count_metric(graph: Graph, sets_all: dict[str, set[str]]) -> None:
    net = overlap_network(graph, metric=Metric.shared, threshold=25)
    want = expected_edges(sets_all, 25, metric="shared")
    assert set(_edges(net)) == set(want)
    assert all(e.weight == e.shared >= 25 for e in net.edges)


# ---------------------------------------------------------------- communities and centrality


def test_louvain_communities_repeat_and_partition_the_nodes(
    graph: Graph, sets_all: dict[str, set[str]]
) -> None:
    names = {g: (g, s) for g, s in sets_all.items()}
    first = build_network(names, threshold=0.2, seed=7)
    again = build_network(names, threshold=0.2, seed=7)
    assert [c.groups for c in first.communities] == [c.groups for c in again.communities]
    assert [n.community for n in first.nodes] == [n.community for n in again.nodes]
    # The service answer (cache cleared) repeats too.
    graph.cache.clear()
    a = overlap_network(graph, threshold=0.2)
    graph.cache.clear()
    b = overlap_network(graph, threshold=0.2)
    assert a.model_dump() == b.model_dump()

    members = [g for c in a.communities for g in c.groups]
    assert sorted(members) == sorted(n.group_id for n in a.nodes)  # each node exactly once
    assert [c.size for c in a.communities] == sorted((c.size for c in a.communities), reverse=True)
    by_node = {n.group_id: n.community for n in a.nodes}
    assert all(by_node[g] == c.community for c in a.communities for g in c.groups)
    # Modularity recomputed independently from the bundle pairs and the reported partition.
    g = nx.Graph()
    for (x, y), (j, _, _) in expected_edges(sets_all, 0.2).items():
        g.add_edge(x, y, weight=j)
    q = nx.community.modularity(g, [set(c.groups) for c in a.communities], weight="weight")
    assert a.modularity == pytest.approx(q, abs=1e-5)
    assert q > 0.3  # real structure, not one blob
    assert len(a.communities) > 1


def test_centrality(graph: Graph, sets_all: dict[str, set[str]]) -> None:
    net = overlap_network(graph, threshold=0.2)
    g = nx.Graph()
    for (x, y), (j, _, _) in expected_edges(sets_all, 0.2).items():
        g.add_edge(x, y, weight=j, distance=1 / j)
    bc = nx.betweenness_centrality(g, weight="distance", normalized=True)
    for n in net.nodes:
        assert n.degree == g.degree(n.group_id)
        assert n.strength == pytest.approx(g.degree(n.group_id, weight="weight"), abs=1e-3)
        assert n.betweenness == pytest.approx(bc[n.group_id], abs=1e-5)
    hub = max(net.nodes, key=lambda n: n.betweenness)
    assert hub.betweenness > 0


# ---------------------------------------------------------------- one actor's neighbourhood


def test_actor_neighbourhood(graph: Graph, sets_all: dict[str, set[str]]) -> None:
    want = expected_edges(sets_all, 0.2)
    adj: dict[str, set[str]] = defaultdict(set)
    for a, b in want:
        adj[a].add(b)
        adj[b].add(a)
    net = overlap_network(graph, threshold=0.2, actor="Fancy Bear")  # alias of APT28
    assert net.actor == "G0007" and net.depth == 1
    hood = {"G0007"} | adj["G0007"]
    assert {n.group_id for n in net.nodes} == hood
    assert set(_edges(net)) == {p for p in want if set(p) <= hood}
    two = overlap_network(graph, threshold=0.2, actor="G0007", depth=2)
    hood2 = hood | {x for n in adj["G0007"] for x in adj[n]}
    assert {n.group_id for n in two.nodes} == hood2
    # Communities and centrality are those of the whole network.
    full = {n.group_id: n for n in overlap_network(graph, threshold=0.2).nodes}
    assert all(n == full[n.group_id] for n in net.nodes)


def test_actor_without_links_is_alone(graph: Graph, sets_all: dict[str, set[str]]) -> None:
    net = overlap_network(graph, threshold=0.9, actor="APT29")
    assert [n.group_id for n in net.nodes] == ["G0016"]
    assert net.edges == [] and net.nodes[0].community is None
    assert net.nodes[0].technique_count == len(sets_all["G0016"])


# ---------------------------------------------------------------- exports


@pytest.fixture(scope="module")
def small_net(graph: Graph) -> overlap.OverlapNetwork:
    return overlap_network(graph, threshold=0.3)


def test_gexf_parses_back(small_net: overlap.OverlapNetwork) -> None:
    g = nx.read_gexf(io.BytesIO(overlap.export_network(small_net, ExportFormat.gexf)))
    assert set(g.nodes) == {n.group_id for n in small_net.nodes}
    assert g.number_of_edges() == small_net.edge_count
    for n in small_net.nodes:
        assert g.nodes[n.group_id]["label"] == n.name
        assert int(g.nodes[n.group_id]["technique_count"]) == n.technique_count
        assert g.nodes[n.group_id]["viz"]["size"] == pytest.approx(n.technique_count)
    for e in small_net.edges:
        assert float(g.edges[e.source, e.target]["weight"]) == pytest.approx(e.weight)


def test_graphml_parses_back(small_net: overlap.OverlapNetwork) -> None:
    g = nx.read_graphml(io.BytesIO(overlap.export_network(small_net, ExportFormat.graphml)))
    assert set(g.nodes) == {n.group_id for n in small_net.nodes}
    for n in small_net.nodes:
        data = g.nodes[n.group_id]
        assert (data["name"], data["technique_count"], data["community"]) == (
            n.name,
            n.technique_count,
            n.community,
        )
    for e in small_net.edges:
        data = g.edges[e.source, e.target]
        assert data["jaccard"] == pytest.approx(e.jaccard) and data["shared"] == e.shared
        assert data["shared_techniques"].split(", ") == e.shared_techniques


def test_cytoscape_json_parses_back(small_net: overlap.OverlapNetwork) -> None:
    data = json.loads(overlap.export_network(small_net, ExportFormat.cyjs))
    assert len(data["elements"]["nodes"]) == small_net.node_count
    g = nx.cytoscape_graph(data)
    assert set(g.nodes) == {n.group_id for n in small_net.nodes}
    assert {tuple(sorted(e)) for e in g.edges} == set(_edges(small_net))
    e = small_net.edges[0]
    assert g.edges[e.source, e.target]["shared_techniques"] == e.shared_techniques


def test_png_and_svg(small_net: overlap.OverlapNetwork) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.image

    png = overlap.export_network(small_net, ExportFormat.png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    h, w = matplotlib.image.imread(io.BytesIO(png)).shape[:2]
    assert w > 800 and h > 600
    svg = overlap.export_network(small_net, ExportFormat.svg)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = svg.decode()
    biggest = max(small_net.nodes, key=lambda n: n.technique_count)
    assert biggest.name in text  # labels are text, not paths
    assert overlap.export_network(small_net, ExportFormat.svg) == svg  # same network, same bytes


def test_export_format_from_file_name() -> None:
    assert overlap.export_format_for("a/b.GEXF") == ExportFormat.gexf
    assert overlap.export_format_for("x.json") == ExportFormat.cyjs
    with pytest.raises(InvalidInput, match="x.txt"):
        overlap.export_format_for("x.txt")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 0}, "Jaccard threshold"),
        ({"threshold": 1.5}, "Jaccard threshold"),
        ({"threshold": math.nan}, "NaN"),
        ({"metric": Metric.shared, "threshold": 2.5}, "whole number"),
        ({"metric": Metric.shared, "threshold": 0}, "whole number"),
        ({"actor": "G0016", "depth": 0}, "depth"),
        ({"actor": "G0016", "depth": 4}, "depth"),
        ({"domain": "mars"}, "domain"),
    ],
)
def test_bad_input_is_invalid(graph: Graph, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        overlap_network(graph, **kwargs)


def test_unknown_actor_is_not_found(graph: Graph) -> None:
    with pytest.raises(NotFound, match="APT 29"):
        overlap_network(graph, actor="APT 29")


# ---------------------------------------------------------------- HTTP and CLI


def test_api_network_equals_the_service(client: TestClient, graph: Graph) -> None:
    resp = client.get("/api/v1/overlap", params={"threshold": 0.3, "actor": "APT28"})
    assert resp.status_code == 200
    assert resp.json() == overlap_network(graph, threshold=0.3, actor="APT28").model_dump(
        mode="json"
    )


@pytest.mark.parametrize(
    "fmt, media", [("gexf", "gexf"), ("graphml", "graphml"), ("cyjs", "json"), ("svg", "svg")]
)
def test_api_downloads(client: TestClient, fmt: str, media: str) -> None:
    resp = client.get(f"/api/v1/overlap/export/{fmt}", params={"threshold": 0.4})
    assert resp.status_code == 200, resp.text
    assert media in resp.headers["content-type"]
    assert "attachment" in resp.headers["content-disposition"]
    if fmt == "graphml":
        g = nx.read_graphml(io.BytesIO(resp.content))
        assert (
            g.number_of_nodes()
            == client.get("/api/v1/overlap", params={"threshold": 0.4}).json()["node_count"]
        )


def test_api_bad_input(client: TestClient) -> None:
    for params in ({"threshold": 3}, {"metric": "cosine"}, {"depth": 9}, {"domain": "mars"}):
        resp = client.get("/api/v1/overlap", params=params)
        assert resp.status_code == 422, params
        assert resp.headers["content-type"].startswith("application/problem+json")
    resp = client.get("/api/v1/overlap", params={"actor": "nobody-at-all"})
    assert resp.status_code == 404
    assert client.get("/api/v1/overlap/export/pdf").status_code == 422


def test_browser_kit_downloads(client: TestClient) -> None:
    resp = client.get("/api/v1/browser-kit/ttpgraph.grass")
    assert resp.status_code == 200 and "node.Technique" in resp.text
    # Neo4j Browser (another origin) fetches `:style <url>`.
    assert resp.headers["access-control-allow-origin"] == "*"
    open_style = client.get("/ui/ttpgraph.grass", headers={"X-API-Key": ""})  # no key needed
    assert open_style.status_code == 200 and open_style.text == resp.text
    assert open_style.headers["access-control-allow-origin"] == "*"
    resp = client.get("/api/v1/browser-kit/favorites.zip")
    assert resp.status_code == 200 and resp.content[:2] == b"PK"


def test_cli_writes_every_format(graph: Graph, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "net.graphml"
    proc = run_cli(settings, "overlap", "--threshold", "0.3", "--actor", "APT28", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    g = nx.read_graphml(out)
    assert set(g.nodes) == {n.group_id for n in overlap_network(graph, threshold=0.3,
                                                                  actor="G0007").nodes}  # fmt: skip
    proc = run_cli(settings, "overlap", "--threshold", "0.3", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["node_count"] == overlap_network(graph, threshold=0.3).node_count


def test_cli_errors_are_one_line(graph: Graph, settings: Settings, tmp_path: Path) -> None:
    for args, text in [
        (["--threshold", "7"], "Jaccard threshold"),
        (["-o", str(tmp_path / "net.txt")], "net.txt"),
        (["--actor", "nobody-at-all"], "nobody-at-all"),
        (["-o", str(tmp_path / "missing" / "net.gexf")], "No such file"),
    ]:
        proc = run_cli(settings, "overlap", *args)
        assert proc.returncode == 1, (args, proc.stdout)
        assert text in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_help() -> None:
    import subprocess
    import sys

    for cmd in (["overlap"], ["browser-kit"]):
        proc = subprocess.run(
            [sys.executable, "-m", "api.cli", *cmd, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and "Usage" in proc.stdout


# ---------------------------------------------------------------- vectorised pairs


@pytest.mark.parametrize(
    ("metric", "threshold"), [("jaccard", 0.1), ("jaccard", 0.2), ("shared", 20)]
)
def test_vectorised_pairs_give_the_pairwise_graph_and_its_communities(
    sets_all: dict[str, set[str]], metric: str, threshold: float
) -> None:
    """The network built pair by pair with Python sets (as before the vectorised pairs): the
    same nodes and edges in the same order, so seeded Louvain finds the same communities."""
    named = {g: (g, techs) for g, techs in sets_all.items()}
    m = Metric(metric)
    built = overlap.similarity_graph(named, metric=m, threshold=threshold)
    pairwise = nx.Graph()
    pairs = expected_edges(sets_all, threshold, metric)
    for gid in sorted({x for pair in pairs for x in pair}):
        pairwise.add_node(gid, name=gid, technique_count=len(sets_all[gid]))
    for (a, b), (j, shared, common) in pairs.items():
        w = float(shared) if m == Metric.shared else j
        pairwise.add_edge(a, b, weight=w, distance=1 / w, jaccard=j, shared=shared,
                          shared_techniques=sorted(common))  # fmt: skip
    assert list(built.nodes(data=True)) == list(pairwise.nodes(data=True))
    assert list(built.edges(data=True)) == list(pairwise.edges(data=True))
    assert overlap.communities(built, seed=42) == overlap.communities(pairwise, seed=42)
    net = build_network(named, metric=m, threshold=threshold)
    assert net.betweenness_sources is None  # exact on the real groups


def test_the_organisations_clusters_as_actors(graph: Graph) -> None:
    """With include_clusters, the clusters an intelligence import brought are actors beside
    ATT&CK's groups, with the techniques the graph holds for them."""
    from loader.intel import delete_source, import_intel_file
    from queries.intel import cluster_technique_sets

    fixture = Path(__file__).parent / "fixtures" / "intel" / "opencti_export.json"
    source = "t-overlap-clusters"
    import_intel_file(graph, fixture, source=source)
    try:
        clusters = {
            c: set(techs)
            for c, (_, techs, srcs) in cluster_technique_sets(graph, []).items()
            if techs and source in srcs
        }
        assert clusters
        plain = overlap_network(graph, metric=Metric.shared, threshold=1)
        with_org = overlap_network(graph, metric=Metric.shared, threshold=1, include_clusters=True)
        assert with_org.groups_considered >= plain.groups_considered + len(clusters)
        assert not any(n.group_id in clusters for n in plain.nodes)
        for c, techs in clusters.items():
            node = next((n for n in with_org.nodes if n.group_id == c), None)
            if node is not None:
                assert node.technique_count == len(techs)
        assert any(n.group_id in clusters for n in with_org.nodes)
    finally:
        delete_source(graph, source)
