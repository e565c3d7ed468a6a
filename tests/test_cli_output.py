"""What the CLI prints, as a person at an 80-column terminal (or a log) reads it: text is never
read as markup, tables keep one line per row within the width (``--wide`` for every column),
long answers are summarised unless ``--all``, and an optional renderer that is missing stops
the command before it writes anything, naming the extra as the README does.

Counts are checked against the command's own ``--format json`` (the same service) and the
bundle where it is independent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from queries.settings import Settings

from .conftest import REPO

WIDTH = 80


def cli(
    settings: Settings, *args: str, columns: int = WIDTH, env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:  # fmt: skip
    full = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_USER=settings.neo4j_user,
        NEO4J_PASSWORD=settings.neo4j_password,
        COLUMNS=str(columns),
        PYTHONPATH=str(REPO),
    )
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True, text=True, env=full, timeout=300, cwd=cwd or REPO,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def table_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("│")]


def test_first_query_and_hints_print_as_written() -> None:
    """`up`'s closing words: the Cypher keeps [u:USES], commands keep their brackets."""
    from api.cli import where_to_look
    from api.output import out
    from loader.neo4j_server import ServerConfig

    with out.capture() as captured:
        for line in where_to_look(ServerConfig(), 8000, serving=True):
            out.print(line, soft_wrap=True)
    text = captured.get()
    assert "-[u:USES]->(t:Technique)-[:IN_TACTIC]->(ta:Tactic)" in text
    for place in ("/browser/?connectURL=", ":8000/docs", ":8000/redoc", ":8000/ui/"):
        assert place in text
    assert "ttpgraph neo4j password" in text and "ttpgraph down" in text


@pytest.mark.parametrize("columns", [80, 120])
def test_tables_fit_the_terminal(graph, settings: Settings, columns: int) -> None:
    for args in (["status"], ["profile", "APT29"], ["expect", "APT29", "-t", "T1566.001"]):
        proc = cli(settings, *args, columns=columns)
        assert proc.returncode == 0, proc.stderr
        too_wide = [ln for ln in proc.stdout.splitlines() if len(ln) > columns]
        assert not too_wide, (args, too_wide)


def test_profile_summarises_by_tactic_and_lists_all_on_request(graph, settings) -> None:
    data = json.loads(cli(settings, "profile", "APT29", "--format", "json").stdout)
    tactics = {ta for t in data["techniques"] for ta in t["tactics"]}
    summary = table_lines(cli(settings, "profile", "APT29").stdout)
    # one row per tactic, then the top-10 mitigations table
    assert len(summary) == len(tactics) + min(10, len(data["mitigations"]))
    every = cli(settings, "profile", "APT29", "--all")
    rows = [ln for ln in table_lines(every.stdout) if ln[2:3] == "T"]
    assert len(rows) == len(data["techniques"])  # one line each, ids whole
    assert {ln.split("│")[1].strip() for ln in rows} == {
        t["technique_id"] for t in data["techniques"]
    }


def test_expect_shows_the_top_and_all_on_request(graph, settings: Settings) -> None:
    args = ["expect", "APT29", "-t", "T1566.001"]
    data = json.loads(cli(settings, *args, "--format", "json").stdout)
    assert len(data["expected"]) > 25
    top = cli(settings, *args)
    assert len(table_lines(top.stdout)) == 25
    assert f"{len(data['expected']) - 25} more" in top.stdout
    assert len(table_lines(cli(settings, *args, "--all").stdout)) == len(data["expected"])


def test_wide_shows_every_column(graph, settings: Settings) -> None:
    narrow = cli(settings, "status")
    assert "source left out" in narrow.stderr and "--wide" in narrow.stderr
    wide = cli(settings, "status", "--wide")
    assert "left out" not in wide.stderr
    header = next(ln for ln in wide.stdout.splitlines() if ln.startswith("┃"))
    assert header.count("┃") == 8  # domain ... source: all seven columns


def test_compare_csv_names_actors_and_gives_jaccard(graph, settings: Settings) -> None:
    actors = ["APT29", "APT28", "Lazarus Group"]
    data = json.loads(cli(settings, "compare", *actors, "--format", "json").stdout)
    text = cli(settings, "compare", *actors, "--format", "csv").stdout
    techniques, matrix = text.split("\n\n")
    head = next(csv.reader(io.StringIO(techniques)))
    labels = [f"{a['name']} ({a['group_id']})" for a in data["actors"]]
    assert head == ["technique_id", "name", "k_of_n", *labels]
    rows = list(csv.reader(io.StringIO(matrix)))
    assert rows[0] == ["jaccard", *labels]
    for i, row in enumerate(rows[1:]):
        assert row[0] == labels[i]
        assert [float(x) for x in row[1:]] == pytest.approx(data["jaccard_matrix"][i], abs=1e-3)


def fake_missing(tmp: Path, module: str) -> dict[str, str]:
    """A PYTHONPATH on which ``import module`` fails, as when the extra is not installed."""
    pkg = tmp / "missing" / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"raise ImportError('{module} is not installed (test)')\n")
    return {"PYTHONPATH": f"{tmp / 'missing'}{os.pathsep}{REPO}"}


def test_layer_svg_without_the_renderer_writes_nothing(graph, settings, tmp_path) -> None:
    env = fake_missing(tmp_path, "mitreattack")
    proc = cli(settings, "layer", "profile", "APT29", "--output", "apt29.json", "--svg",
               "apt29.svg", env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    assert "pip install -e '.[render]'" in proc.stderr  # the README's words, brackets kept
    assert not (tmp_path / "apt29.json").exists() and not (tmp_path / "apt29.svg").exists()


def test_overlap_png_without_matplotlib_writes_nothing(graph, settings, tmp_path) -> None:
    env = fake_missing(tmp_path, "matplotlib")
    proc = cli(settings, "overlap", "--actor", "APT28", "-o", "apt28.png", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "pip install -e '.[plot]'" in proc.stderr
    assert not (tmp_path / "apt28.png").exists()


def test_progress_is_plain_lines_off_a_terminal(graph, settings: Settings) -> None:
    """An inventory import in a log: its steps as lines, no spinner control codes."""
    proc = cli(settings, "inventory", "import", "sigma", "examples/soc", "--name", "t-out-soc")
    try:
        assert proc.returncode == 0, proc.stderr
        assert "importing sigma rules from examples/soc" in proc.stderr
        assert "\x1b[" not in proc.stderr and "\r" not in proc.stderr
    finally:
        cli(settings, "inventory", "delete", "t-out-soc", "-y")
