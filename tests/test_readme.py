"""Every command the README (and docs/*.md) shows runs as written.

The rule, for whoever edits the docs:

- A fenced block marked ```bash is run, line by line as bash runs it (``set -euo pipefail``),
  and must exit 0 without a traceback. Blocks run in document order — README.md first, then
  docs/*.md by name — in one working folder, so a later block may use what an earlier one
  wrote (``gaps.json``) or imported (inventory ``soc``).
- Anything that cannot run here — syntax summaries (``install|start|stop``), TAXII from MITRE,
  Docker, servers that keep running, curl against a server on port 8000 — goes in a block
  marked ```text (or another language), which is shown and never run.
- Files an example needs are shipped in ``examples/`` (made by the project, real formats); the
  ATT&CK bundles and rule corpora are read from ``../shared/`` as the README says.

How: the working folder is a temporary one with ``examples`` (this repository's) and
``../shared`` (the test data) beside it, HOME is a temporary folder, ``ttpgraph`` on PATH runs
this checkout's CLI (through tests/cli_forkserver.py: the CLI is imported once, each command
line is a fork of it) against the session's Neo4j, with ``COLUMNS=80``. What the commands add
to the graph (inventories, intel, threat models) is deleted at the end, and the test checks
that the organisation's objects are back to what they were.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from queries.graph import Graph
from queries.settings import Settings

from .cli_forkserver import write_client
from .conftest import ATTACK, CORPORA, REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = "bash"
FENCE = re.compile(r"^```(\S*)\s*$")
# What the examples may add; the test puts these labels back to their counts.
ORG_LABELS = ["Inventory", "DetectionRule", "OrgObject", "Incident", "ThreatModel"]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lang: str | None = None
    start = 0
    body: list[str] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if lang is None and m:
            lang, start, body = m.group(1), i, []
        elif lang is not None and line.strip() == "```":
            found.append(Block(path, start, lang, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"{path}: a code block opened at line {start} is never closed"
    return found


def runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang == RUN]


def test_the_rule_is_followed() -> None:
    """The README keeps runnable examples, and its non-runnable ones are marked as such."""
    readme = blocks(REPO / "README.md")
    assert len([b for b in readme if b.lang == RUN]) >= 6
    for b in readme:
        assert b.lang, f"{b.where}: a code block without a language (bash or text)"
        if b.lang == RUN:
            assert "docker compose" not in b.text and "scripts/up.sh" not in b.text, b.where


@dataclass
class Workspace:
    cwd: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def workspace(
    graph: Graph, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("readme")
    cwd, home, bin_dir = root / "work", root / "home", root / "bin"
    for d in (cwd, home, bin_dir):
        d.mkdir()
    (cwd / "examples").symlink_to(REPO / "examples")
    shared = root / "shared"
    shared.mkdir()
    (shared / "attack").symlink_to(ATTACK)
    (shared / "corpora").symlink_to(CORPORA)
    sock = str(root / "cli.sock")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEO4J_", "TTPGRAPH_", "PYTEST", "COV_"))
    }
    env.update(
        HOME=str(home),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        COLUMNS="80",
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_USER=settings.neo4j_user,
        NEO4J_PASSWORD=settings.neo4j_password,
        NEO4J_DATABASE=settings.neo4j_database,
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.cli_forkserver", sock],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        write_client(str(bin_dir / "ttpgraph"), sock)
        before = org_counts(graph)
        yield Workspace(cwd, env)
        cleanup(graph, Workspace(cwd, env))
        assert org_counts(graph) == before, "the README's examples left objects in the graph"
    finally:
        server.terminate()
        server.wait(timeout=30)


def org_counts(graph: Graph) -> dict[str, int]:
    return {
        label: graph.read(f"MATCH (n:{label}) RETURN count(n) AS n")[0]["n"] for label in ORG_LABELS
    }


def cleanup(graph: Graph, ws: Workspace) -> None:
    """Delete what the examples made, with the CLI's own delete commands."""
    script = [
        "for m in $(ttpgraph threat-model list --format csv | tail -n +2 | cut -d, -f1); do"
        ' ttpgraph threat-model delete "$m"; done',
        "for i in soc sigma; do ttpgraph inventory delete $i -y || true; done",
    ]
    for row in graph.read(
        "MATCH (n:OrgObject) WHERE n.source IS NOT NULL RETURN DISTINCT n.source AS s"
    ):
        script.append(f"ttpgraph intel delete {shell_quote(row['s'])}")
    run_bash("\n".join(script), ws, where="cleanup")


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def run_bash(text: str, ws: Workspace, *, where: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + text],
        cwd=ws.cwd,
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_document_examples_run_as_written(document: Path, workspace: Workspace) -> None:
    for block in runnable(document):
        t0 = time.monotonic()
        proc = run_bash(block.text, workspace, where=block.where)
        took = time.monotonic() - t0
        shown = f"{block.where} ({took:.1f} s):\n{block.text}\nstderr:\n{proc.stderr[-3000:]}"
        assert proc.returncode == 0, f"exit {proc.returncode} at {shown}"
        assert "Traceback" not in proc.stderr + proc.stdout, shown
