"""The layer front doors against the real graph: HTTP downloads (JSON, SVG, Excel), uploads
(combine, import), problem+json errors, and the ``ttpgraph layer`` commands writing real files.

Each answer is compared with the service's (which test_layer_services.py checks against the
bundle), and each file is opened the way a user would: JSON into mitreattack-python's ``Layer``,
SVG as XML, Excel with openpyxl.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from queries import layers as L
from queries.errors import NotFound
from queries.graph import Graph
from queries.layers.actor_layers import compare_layer_for, profile_layer_for
from queries.layers.detection_layers import coverage_layer_for, gaps_layer_for, telemetry_layer_for
from queries.layers.input_layers import combine_layers_for, import_layer_as_actor_set
from queries.settings import Settings

from .conftest import CORPORA

ART_DIR = CORPORA / "atomic-red-team" / "atomics" / "Indexes" / "Attack-Navigator-Layers"
ART_CSV = CORPORA / "atomic-red-team" / "atomics" / "Indexes" / "Indexes-CSV" / "windows-index.csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Matrix bundles for the renderers go to a temporary cache folder, not the user's."""
    folder = tmp_path_factory.mktemp("ttpgraph-cache")
    old = os.environ.get("TTPGRAPH_CACHE_DIR")
    os.environ["TTPGRAPH_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("TTPGRAPH_CACHE_DIR", None)
    else:
        os.environ["TTPGRAPH_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def client(
    graph: Graph, settings: Settings, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The app with API keys on (the default), called with a read key: every layer route,
    uploads included, only reads."""
    from api.auth import KeyStore

    keys_file = tmp_path_factory.mktemp("apikeys") / "api-keys.json"
    _, read_key = KeyStore(keys_file).create(role="read", name="layers-test")
    app_settings = settings.model_copy(
        update={"ttpgraph_api_auth": True, "ttpgraph_api_keys_file": str(keys_file)}
    )
    with TestClient(create_app(app_settings), headers={"X-API-Key": read_key}) as c:
        yield c


@pytest.fixture(scope="module")
def inventory(graph: Graph) -> Iterator[str]:
    """Atomic Red Team's Windows test index imported as an inventory of this run, then deleted."""
    from loader.inventory.importer import delete_inventory, import_inventory

    name = f"test-api-layers-{uuid.uuid4().hex[:8]}"
    try:
        import_inventory(graph, "csv", ART_CSV, name=name)
        yield name
    finally:
        with contextlib.suppress(NotFound):
            delete_inventory(graph, name)


def loads_in_mitreattack(layer: dict[str, Any]) -> None:
    from mitreattack.navlayers import Layer

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        loaded = Layer(layer)
    assert hasattr(loaded.layer, "get_dict") and printed.getvalue() == "", printed.getvalue()


def svg_techniques(data: bytes) -> set[str]:
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(data)
    return {
        r.get("class", "")
        for r in root.iter(f"{ns}rect")
        if r.get("class", "").startswith("T") and r.get("style") != "fill: rgb(255, 255, 255)"
    }


def scored_ids(layer: dict[str, Any]) -> set[str]:
    return {e["techniqueID"] for e in layer["techniques"] if "score" in e}


# ---------------------------------------------------------------- downloads


def test_profile_layer_is_a_json_download_equal_to_the_service(
    client: TestClient, graph: Graph
) -> None:
    resp = client.get("/api/v1/layers/profile/cozy bear")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-disposition"] == 'attachment; filename="profile-g0016-apt29.json"'
    expected = profile_layer_for(graph, group="G0016")
    assert resp.json() == expected.layer
    assert resp.headers["x-ttpgraph-techniques"] == str(expected.techniques)
    assert resp.headers["x-ttpgraph-left-out"] == "0"
    L.validate_layer(resp.json())
    loads_in_mitreattack(resp.json())


@pytest.mark.parametrize(
    ("path", "params", "service"),
    [
        (
            "/api/v1/layers/compare",
            {"actor": ["APT29,APT28", "FIN7"], "weight": ["APT29=2"]},
            lambda g, inv: compare_layer_for(
                g, groups=["APT29", "APT28", "FIN7"], weights={"APT29": 2}
            ),
        ),
        (
            "/api/v1/layers/telemetry",
            {"source": ["WinEventLog:Sysmon"], "level": "log_source", "actors": "FIN7"},
            lambda g, inv: telemetry_layer_for(
                g, sources=["WinEventLog:Sysmon"], level="log_source", actors=["FIN7"]
            ),
        ),
        (
            "/api/v1/layers/coverage",
            {"inventory": "{inv}"},
            lambda g, inv: coverage_layer_for(g, inventory=inv),
        ),
        (
            "/api/v1/layers/gaps",
            {"actors": "APT29=2,FIN7", "inventory": "{inv}"},
            lambda g, inv: gaps_layer_for(g, actors={"APT29": 2, "FIN7": 1}, inventory=inv),
        ),
        (
            "/api/v1/layers/telemetry",
            {"actors": "APT29,FIN7", "inventory": "{inv}"},
            lambda g, inv: telemetry_layer_for(g, actors=["APT29", "FIN7"], inventory=inv),
        ),
    ],
    ids=["compare", "telemetry", "coverage", "gaps", "plan"],
)
def test_every_layer_route_downloads_the_services_layer(
    client: TestClient, graph: Graph, inventory: str, path: str, params: dict, service: Any
) -> None:
    params = {
        k: v.replace("{inv}", inventory) if isinstance(v, str) else v for k, v in params.items()
    }
    resp = client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    expected = service(graph, inventory)
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["content-disposition"] == f'attachment; filename="{expected.filename}"'
    assert resp.json() == expected.layer
    loads_in_mitreattack(resp.json())


def test_svg_and_excel_downloads(client: TestClient, graph: Graph, inventory: str) -> None:
    params = {"actors": "APT29,FIN7", "inventory": inventory}
    layer = client.get("/api/v1/layers/gaps", params=params).json()
    svg = client.get("/api/v1/layers/gaps", params={**params, "format": "svg"})
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"].startswith("image/svg+xml")
    disposition = svg.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="gaps-') and disposition.endswith('.svg"')
    assert scored_ids(layer) <= svg_techniques(svg.content)

    xlsx = client.get("/api/v1/layers/gaps", params={**params, "format": "xlsx"})
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.headers["content-type"] == XLSX
    assert xlsx.headers["content-disposition"].endswith('.xlsx"')
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    filled = [c for row in sheet.iter_rows(min_row=2) for c in row if c.fill.fill_type == "solid"]
    assert len(filled) >= len(scored_ids(layer))


def test_rendering_without_mitreattack_is_501(client: TestClient, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "mitreattack.navlayers", None)  # import now fails
    resp = client.get("/api/v1/layers/profile/G0007", params={"format": "svg"})
    assert resp.status_code == 501
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "mitreattack-python" in resp.json()["detail"]


# ---------------------------------------------------------------- uploads


def test_combine_uploads(client: TestClient, graph: Graph) -> None:
    a = profile_layer_for(graph, group="APT29").layer
    b = ART_DIR / "art-navigator-layer-windows.json"
    files = [
        ("layers", ("apt29.json", json.dumps(a).encode(), "application/json")),
        ("layers", ("art.json", b.read_bytes(), "application/json")),
    ]
    resp = client.post(
        "/api/v1/layers/combine",
        files=files,
        data={"expression": "min(a, b)", "keep_zero": "false", "name": "APT29 tested"},
    )
    assert resp.status_code == 200, resp.text
    expected = combine_layers_for(
        graph,
        layers={"a": a, "b": b},
        expression="min(a, b)",
        keep_zero=False,
        name="APT29 tested",
    )
    assert resp.json() == expected.layer
    assert resp.headers["content-disposition"] == 'attachment; filename="combine-apt29-tested.json"'
    assert resp.headers["x-ttpgraph-left-out"] == str(len(expected.left_out)) != "0"
    loads_in_mitreattack(resp.json())


@pytest.mark.parametrize(
    ("files", "data", "detail"),
    [
        ([("x.json", b"{not json")], {"expression": "a"}, "a: layer: not JSON"),
        (
            [("x.json", b'{"name": "x", "domain": "enterprise-attack", "techniques": [{}]}')],
            {"expression": "a"},
            "techniques[0]: techniqueID missing",
        ),
        (
            [("x.json", b'{"name": "x", "domain": "enterprise-attack", "techniques": []}')],
            {"expression": "a + import('os')"},
            "expression:",
        ),
        (
            [("x.json", b'{"name": "x", "domain": "enterprise-attack", "techniques": []}')] * 11,
            {"expression": "a"},
            "1 to 10 layer files",
        ),
    ],
    ids=["not-json", "no-technique-id", "bad-expression", "too-many"],
)
def test_combine_bad_uploads_are_422(
    client: TestClient, files: list[tuple[str, bytes]], data: dict, detail: str
) -> None:
    upload = [("layers", (name, body, "application/json")) for name, body in files]
    resp = client.post("/api/v1/layers/combine", files=upload, data=data)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert detail in resp.json()["detail"]


def test_import_upload_reads_an_atomic_red_team_layer(client: TestClient, graph: Graph) -> None:
    path = ART_DIR / "art-navigator-layer-linux.json"
    resp = client.post(
        "/api/v1/layers/import",
        files={"layer": (path.name, path.read_bytes(), "application/json")},
        data={"similar": "3"},
    )
    assert resp.status_code == 200, resp.text
    expected = import_layer_as_actor_set(graph, layer=path, similar=3)
    assert resp.json() == expected.model_dump(mode="json")
    assert len(resp.json()["similar"]) == 3


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/api/v1/layers/profile/APT 29", {}, 404, "no group named 'APT 29'"),
        ("/api/v1/layers/profile/APT29", {"domain": "mars"}, 422, "domain"),
        ("/api/v1/layers/profile/APT29", {"format": "png"}, 422, "format"),
        ("/api/v1/layers/compare", {"actor": "APT29", "weight": "APT29=x"}, 422, "weight"),
        ("/api/v1/layers/compare", {"actor": "APT29"}, 422, "at least 2 actors"),
        ("/api/v1/layers/telemetry", {"source": "Sysmon"}, 404, "no data component named"),
        ("/api/v1/layers/coverage", {"inventory": "no-such-inventory-xyz"}, 404, "inventory"),
        ("/api/v1/layers/gaps", {"actors": "APT29"}, 422, "inventory"),
    ],
)
def test_bad_requests_are_problems(
    client: TestClient, path: str, params: dict, status: int, detail: str
) -> None:
    resp = client.get(path, params=params)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert detail in resp.json()["detail"]


def test_openapi_documents_the_layer_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("profile/{group}", "compare", "coverage", "gaps", "telemetry", "combine", "import"):
        assert f"/api/v1/layers/{p}" in paths
    ok = paths["/api/v1/layers/gaps"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "image/svg+xml", XLSX} <= set(ok)
    assert "501" in paths["/api/v1/layers/gaps"]["get"]["responses"]
    schemas = spec["components"]["schemas"]
    assert "NavigatorLayer" in schemas and "LayerActorSet" in schemas


# ---------------------------------------------------------------- the CLI


def run_cli(settings: Settings, cache: Path, *args: str, cwd: Path | None = None):
    env = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_USER=settings.neo4j_user,
        NEO4J_PASSWORD=settings.neo4j_password,
        TTPGRAPH_CACHE_DIR=str(cache),
        COLUMNS="200",
    )
    repo = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "cmd",
    [
        [],
        ["profile"],
        ["compare"],
        ["coverage"],
        ["gaps"],
        ["telemetry"],
        ["combine"],
        ["import"],
        ["render"],
    ],
)
def test_layer_help(cmd: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "layer", *cmd, "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_cli_gaps_writes_json_and_svg(
    graph: Graph, settings: Settings, inventory: str, cache_dir: Path, tmp_path: Path
) -> None:
    """The issue's example: ttpgraph layer gaps --actors "APT29,FIN7" --inventory soc
    --output gaps.json, and the picture for a report with --svg."""
    proc = run_cli(
        settings,
        cache_dir,
        "layer",
        "gaps",
        "--actors",
        "APT29,FIN7",
        "--inventory",
        inventory,
        "--output",
        str(tmp_path / "gaps.json"),
        "--svg",
        str(tmp_path / "gaps.svg"),
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    expected = gaps_layer_for(graph, actors=["APT29", "FIN7"], inventory=inventory)
    written = json.loads((tmp_path / "gaps.json").read_text(encoding="utf-8"))
    assert written == expected.layer
    assert summary["techniques"] == expected.techniques and summary["kind"] == "gaps"
    assert [f["format"] for f in summary["files"]] == ["json", "svg"]
    assert scored_ids(written) <= svg_techniques((tmp_path / "gaps.svg").read_bytes())
    loads_in_mitreattack(written)


def test_cli_profile_to_stdout_combine_and_render(
    graph: Graph, settings: Settings, cache_dir: Path, tmp_path: Path
) -> None:
    proc = run_cli(settings, cache_dir, "layer", "profile", "APT29", "--kind", "direct")
    assert proc.returncode == 0, proc.stderr
    a = json.loads(proc.stdout)
    assert a == profile_layer_for(graph, group="APT29", kinds=["direct"]).layer
    (tmp_path / "a.json").write_text(proc.stdout, encoding="utf-8")
    art = ART_DIR / "art-navigator-layer-windows.json"
    proc = run_cli(
        settings,
        cache_dir,
        "layer",
        "combine",
        str(tmp_path / "a.json"),
        str(art),
        "-e",
        "a - b",
        "--drop-zero",
        "-o",
        str(tmp_path / "c.json"),
        "--xlsx",
        str(tmp_path / "c.xlsx"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "c.json" in proc.stdout and "left out" in proc.stdout
    combined = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    expected = combine_layers_for(
        graph, layers={"a": a, "b": art}, expression="a - b", keep_zero=False
    )
    assert combined == expected.layer
    import openpyxl

    assert openpyxl.load_workbook(tmp_path / "c.xlsx").active.max_row > 10
    proc = run_cli(
        settings,
        cache_dir,
        "layer",
        "render",
        str(tmp_path / "c.json"),
        "--svg",
        str(tmp_path / "r.svg"),
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    assert scored_ids(combined) <= svg_techniques((tmp_path / "r.svg").read_bytes())


def test_cli_import_lists_similar_groups(settings: Settings, cache_dir: Path) -> None:
    path = ART_DIR / "art-navigator-layer-macos.json"
    proc = run_cli(settings, cache_dir, "layer", "import", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["name"] == "Atomic Red Team (macOS)" and found["similar"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "APT 29"], "no group named 'APT 29'"),
        (["combine", "/nonexistent/a.json", "-e", "a"], "cannot be read"),
        (["compare", "--actors", "APT29", "--weight", "APT29"], "expected ACTOR=NUMBER"),
        (["profile", "APT29", "-o", "/nonexistent/dir/x.json"], "No such file or directory"),
        (["render", "x.json"], "give --svg FILE and/or --xlsx FILE"),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(
    graph: Graph, settings: Settings, cache_dir: Path, args: list[str], message: str
) -> None:
    proc = run_cli(settings, cache_dir, "layer", *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
