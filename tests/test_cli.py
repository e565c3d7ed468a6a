"""The CLI against the real server: --help everywhere, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from queries.settings import Settings

from .conftest import ENTERPRISE


def run_cli(
    settings: Settings, *args: str, cfg_dir: Path | None = None
) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        NEO4J_URI=settings.neo4j_uri,
        NEO4J_USER=settings.neo4j_user,
        NEO4J_PASSWORD=settings.neo4j_password,
        COLUMNS="200",
    )
    if cfg_dir is not None:
        env["TTPGRAPH_CONFIG_DIR"] = str(cfg_dir)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "cmd", [[], ["load"], ["status"], ["serve"], ["up"], ["neo4j"], ["neo4j", "start"]]
)
def test_help_everywhere(cmd: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", *cmd, "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_status_json(graph, settings: Settings) -> None:
    proc = run_cli(settings, "status", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    domains = {r["domain"] for r in data["releases"]}
    assert domains == {"enterprise-attack", "mobile-attack", "ics-attack"}


def test_status_csv(graph, settings: Settings) -> None:
    proc = run_cli(settings, "status", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("domain,version,")


def test_load_bad_file_is_one_line_and_exit_1(graph, settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"type": "bundle", "objects": [')
    proc = run_cli(settings, "load", "--source", str(bad))
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "reading" not in ln]
    assert len(lines) == 1 and "broken.json" in lines[0] and "not valid JSON" in lines[0]
    assert "Traceback" not in proc.stderr


def test_load_missing_file(graph, settings: Settings) -> None:
    proc = run_cli(settings, "load", "--source", "/nonexistent/bundle.json")
    assert proc.returncode == 1
    assert "no such file" in proc.stderr
    # SOURCE may be given as an argument too, the same way
    proc = run_cli(settings, "load", "/nonexistent/bundle.json")
    assert proc.returncode == 1
    assert "no such file" in proc.stderr and "/nonexistent/bundle.json" in proc.stderr
    proc = run_cli(settings, "load", "a.json", "--source", "b.json")
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_unreachable_neo4j_is_one_line(tmp_path: Path) -> None:
    bad = Settings(neo4j_uri="bolt://127.0.0.1:1", neo4j_password="x")
    proc = run_cli(bad, "status")
    assert proc.returncode == 1
    assert "Neo4j is not reachable" in proc.stderr and "Traceback" not in proc.stderr


def test_settings_file_is_used_and_env_overrides(graph, settings: Settings, tmp_path: Path) -> None:
    """After `neo4j start` writes the settings file, commands need no exported variables."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "settings.json").write_text(
        json.dumps(
            {
                "neo4j_uri": settings.neo4j_uri,
                "neo4j_user": "neo4j",
                "neo4j_password": settings.neo4j_password,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env["TTPGRAPH_CONFIG_DIR"] = str(cfg)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "status", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    env["NEO4J_PASSWORD"] = "wrong-password"
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "status"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1 and "credentials" in proc.stderr


def test_load_enterprise_from_cli_with_json_output(graph, settings: Settings) -> None:
    proc = run_cli(settings, "load", "--source", str(ENTERPRISE), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data[0]["domain"] == "enterprise-attack" and data[0]["release"] == "18.1"


@pytest.mark.parametrize("cmd", [["profile"], ["compare"], ["similar"], ["groups", "search"]])
def test_actor_commands_have_help(cmd: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", *cmd, "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "--format" in proc.stdout


def test_profile_json_and_unknown_actor(graph, settings: Settings) -> None:
    proc = run_cli(settings, "profile", "NOBELIUM", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["group_id"] == "G0016"
    proc = run_cli(settings, "profile", "APT 29")
    assert proc.returncode == 1
    assert "no group named 'APT 29'" in proc.stderr and "APT29 (G0016)" in proc.stderr


def test_compare_csv(graph, settings: Settings) -> None:
    proc = run_cli(settings, "compare", "APT29", "APT28", "Lazarus Group", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0].split(",")
    assert header == ["technique_id", "name", "k_of_n", "APT29 (G0016)", "APT28 (G0007)",
                      "Lazarus Group (G0032)"]  # fmt: skip


def test_the_command_table_matches_the_modules() -> None:
    """`ttpgraph --help` lists the commands from api.cli.COMMANDS without importing their
    modules, and a command line imports only its own: the table must say which module defines
    each command (a group: its sub-commands) and what their help says."""
    import importlib

    from api import cli

    for module, _ in cli.COMMANDS.values():
        importlib.import_module(f"api.{module}")
    defined = {
        c.name or c.callback.__name__.replace("_", "-"): c.callback.__module__
        for c in cli.app.registered_commands
    } | {
        g.name: g.typer_instance.registered_commands[0].callback.__module__
        for g in cli.app.registered_groups
    }
    assert {k: v for k, v in defined.items() if k not in cli.OWN_COMMANDS} == {
        name: f"api.{module}" for name, (module, _) in cli.COMMANDS.items()
    }
    assert {k for k, v in defined.items() if v in ("api.cli", "api.serve")} == cli.OWN_COMMANDS
    lazy = subprocess.run(
        [sys.executable, "-m", "api.cli", "--help"], capture_output=True, text=True, check=True,
        env=dict(os.environ, COLUMNS="400"),
    ).stdout  # fmt: skip
    every = subprocess.run(
        [sys.executable, "-c", "import importlib, sys\nfrom api import cli\n"
         "for m, _ in cli.COMMANDS.values(): importlib.import_module('api.' + m)\n"
         "sys.argv[0] = 'python -m api.cli'\ncli.main()", "--help"],
        capture_output=True, text=True, check=True, env=dict(os.environ, COLUMNS="400"),
    ).stdout  # fmt: skip
    assert lazy == every
    for name in cli.COMMANDS:
        assert f"  {name} " in lazy


def test_a_question_imports_neither_rich_nor_pandas_nor_other_commands(
    graph, settings: Settings
) -> None:
    """What `ttpgraph profile APT29 --format json` imports (its start-up is most of its time):
    its own command module, not the others, not rich (no table), not the driver's optional
    pandas."""
    code = (
        "import sys\nfrom api import cli\nsys.argv = ['ttpgraph'] + sys.argv[1:]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rich', 'pandas', 'numpy', 'api', 'neo4j'))))\n"
    )
    env = dict(os.environ, NEO4J_URI=settings.neo4j_uri, NEO4J_USER=settings.neo4j_user,
               NEO4J_PASSWORD=settings.neo4j_password)  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, "profile", "APT29", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.splitlines()[-1].split())
    assert "neo4j" in loaded and "api.cli_actors" in loaded  # it did try the question
    assert not {m for m in loaded if m.split(".")[0] in ("pandas", "numpy")}
    assert not {m for m in loaded if m.startswith("api.cli_") and m != "api.cli_actors"}
    help_proc = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=120
    )
    assert not {m for m in help_proc.stdout.split() if m.startswith(("rich", "api.cli_"))}
