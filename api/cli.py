"""The ``ttpgraph`` command line: a few lines around one service call per command."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from queries.errors import TtpgraphError
from queries.lazy import lazy_module

from . import output
from .output import Format, bold, emit, err, out, real_console, step, styled
from .serve import serve as serve_command

# What a command needs is imported when it runs: `--help` and one question stay quick.
if TYPE_CHECKING:
    from rich.text import Text

    from loader import load as loading
    from loader import neo4j_server as srv
    from queries import settings as config
    from queries import status as status_service
    from queries.graph import Graph
else:
    srv = lazy_module("loader.neo4j_server")
    loading = lazy_module("loader.load")
    status_service = lazy_module("queries.status")
    config = lazy_module("queries.settings")


class Root(TyperGroup):
    """The root command: lists the commands of modules not imported (see register_commands)
    from COMMANDS, in one order whether they are imported or not."""

    def list_commands(self, ctx: Any) -> list[str]:
        own = [name for name in self.commands if name not in COMMANDS]
        return [*own, *COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in COMMANDS:  # listed in the help only
            cmd = TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])
        return cmd


app = typer.Typer(
    name="ttpgraph",
    cls=Root,
    help="MITRE ATT&CK as a Neo4j graph, for threat-informed defense.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
neo4j_app = typer.Typer(help="Run Neo4j Community from Maven Central, without Docker.")


@app.callback()
def root(
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="Tables with every column and every cell in full (may also follow the command).",
        ),
    ] = False,
) -> None:
    """MITRE ATT&CK as a Neo4j graph, for threat-informed defense."""
    if wide:
        output.WIDE = True


app.add_typer(neo4j_app, name="neo4j")

FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(styled(("error:", "bold red"), " ", message), soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Map every error a user can cause to one line on stderr and exit code 1 — Neo4j going
    away mid-command included (a driver error, not a traceback). The error classes are imported
    when an error comes (an ``except`` clause is evaluated then): a command that never reaches
    the driver does not import it."""
    try:
        yield
    except TtpgraphError as exc:
        raise fail(_one_line(exc)) from None
    except load_errors() as exc:
        raise fail(str(exc)) from None
    except driver_errors() as exc:
        from queries.graph import domain_error

        mapped = domain_error(exc)
        if mapped is not None:
            raise fail(_one_line(mapped)) from None
        code = getattr(exc, "code", None) or type(exc).__name__
        message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()
        raise fail(f"Neo4j refused it ({code}): {message[0] if message else ''}") from None


def load_errors() -> tuple[type[Exception], ...]:
    from loader.stix import BundleError

    return BundleError, srv.ServerError


def driver_errors() -> tuple[type[Exception], ...]:
    from neo4j.exceptions import DriverError, Neo4jError

    return DriverError, Neo4jError


def _one_line(exc: TtpgraphError) -> str:
    hint = f" (did you mean: {', '.join(exc.suggestions)}?)" if exc.suggestions else ""
    private = f" ({' '.join(exc.private.split())[:300]})" if exc.private else ""
    return exc.detail + private + hint


_graph: Graph | None = None


def graph() -> Graph:
    """The process's one Graph, created on first use."""
    global _graph
    if _graph is None:
        from queries.graph import Graph

        _graph = Graph.connect(config.get_settings())
    return _graph


def run(fn: Callable[[Graph], T]) -> T:
    with user_errors():
        return fn(graph())


def server_config(home: Path | None = None, bolt_port: int = 7687, http_port: int = 7474):
    cfg = srv.ServerConfig(bolt_port=bolt_port, http_port=http_port)
    if home is not None:
        cfg.home = home
    env_password = os.environ.get("NEO4J_PASSWORD")
    if env_password:
        cfg.password = env_password
    return cfg


HomeOpt = Annotated[
    Path | None, typer.Option(help="Server folder (default: the user's cache folder).")
]
BoltOpt = Annotated[int, typer.Option(help="Bolt port on 127.0.0.1.")]
HttpOpt = Annotated[int, typer.Option(help="HTTP port on 127.0.0.1 (Neo4j Browser).")]


@neo4j_app.command("install")
def neo4j_install(home: HomeOpt = None) -> None:
    """Fetch Neo4j Community and Neo4j Browser from Maven Central into the cache folder."""
    cfg = server_config(home)
    with user_errors(), step(f"resolving Neo4j {srv.NEO4J_VERSION} with Maven..."):
        lib = srv.install(cfg)
    out.print(f"Neo4j {srv.NEO4J_VERSION} installed in {lib}")


@neo4j_app.command("start")
def neo4j_start(
    home: HomeOpt = None,
    bolt_port: BoltOpt = 7687,
    http_port: HttpOpt = 7474,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Bolt.")] = 120.0,
) -> None:
    """Start Neo4j in the background (reusing a running one) and remember its credentials."""
    cfg = server_config(home, bolt_port, http_port)
    with user_errors(), step("starting Neo4j..."):
        res = start_server(cfg, timeout=timeout)
    path = config.write_settings_file(
        {"neo4j_uri": res.bolt_uri, "neo4j_user": "neo4j", "neo4j_password": res.password}
    )
    what = "already running" if res.reused else f"started in {res.seconds:.1f} s"
    out.print(f"Neo4j {srv.NEO4J_VERSION} {what} (pid {res.pid})")
    out.print(f"  Bolt:    {res.bolt_uri}")
    # URLs and paths whole on one line (the terminal wraps them; copying keeps them intact).
    out.print(f"  Browser: {cfg.browser_connect_url}", soft_wrap=True)
    out.print(f"           user neo4j; password: ttpgraph neo4j password (kept in {path})",
              soft_wrap=True)  # fmt: skip
    if not res.reused:
        out.print("  Planning the catalog in the background (ttpgraph neo4j warm)")


@neo4j_app.command("password")
def neo4j_password() -> None:
    """Print the Neo4j password ttpgraph uses (NEO4J_PASSWORD, else the settings file), to paste
    into Neo4j Browser's connect form."""
    password = config.get_settings().neo4j_password
    if not password:
        raise fail(
            f"no Neo4j password known yet: run 'ttpgraph neo4j start' ({config.settings_file()})"
        )
    sys.stdout.write(password + "\n")


def start_server(
    cfg: srv.ServerConfig, *, timeout: float, watch_pid: int | None = None
) -> srv.StartResult:
    """Start the server (installing it first if need be), or reuse the running one; after a
    fresh start, plan the catalog in the background (:func:`spawn_warm_up`)."""
    if not srv.is_installed(cfg):
        srv.install(cfg)
    res = srv.start(cfg, timeout=timeout, watch_pid=watch_pid)
    if not res.reused:
        spawn_warm_up(cfg, res.bolt_uri, res.password)
    return res


def spawn_warm_up(cfg: srv.ServerConfig, uri: str, password: str) -> None:
    """``ttpgraph neo4j warm`` in a process of its own, so start returns at once; it records
    what it did in the server's run folder (``ttpgraph-warm.json``)."""
    import subprocess
    import sys

    env = dict(os.environ, NEO4J_URI=uri, NEO4J_USER="neo4j", NEO4J_PASSWORD=password)
    status_file = cfg.home / "run" / "ttpgraph-warm.json"
    status_file.unlink(missing_ok=True)
    subprocess.Popen(
        [sys.executable, "-m", "api.cli", "neo4j", "warm", "--status-file", str(status_file)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@neo4j_app.command("warm")
def neo4j_warm(
    status_file: Annotated[
        Path | None, typer.Option(help="Write what was done here (JSON) when done.")
    ] = None,
) -> None:
    """Plan the catalog now: create the labels, types and property keys it names, run every
    catalog query and the common service calls once, then a load's statements on made-up
    objects (written and deleted, then rolled back in every batch-size bucket), so the first
    questions and the first load after a start run at full speed (``neo4j start`` runs it by
    itself)."""
    import json

    from loader.writer import ensure_schema, warm_writes
    from queries.catalog import load_catalog
    from queries.warm import announced, create_tokens, record_catalog_planned, warm

    with user_errors(), announced(graph()):  # an API starting meanwhile waits for the end
        ensure_schema(graph())  # first: a schema change would drop the plans made before it,
        # and so would the first node carrying a property key or label a plan names
        create_tokens(graph(), [q.text for q in load_catalog().values()])
        report = warm(graph())
        writes = warm_writes(graph())
        if not report.failed and not report.stopped_early:
            record_catalog_planned(graph())  # an API starting later skips its catalog pass
    data = {**report.__dict__, "writes_seconds": writes}
    if status_file is not None:
        tmp = status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, status_file)
    out.print(
        f"planned {report.queries} catalog queries and {report.services} service calls "
        f"in {report.seconds:.1f} s, a load's statements in {writes:.1f} s"
        + (f"; failed: {', '.join(report.failed)}" if report.failed else "")
    )


@neo4j_app.command("stop")
def neo4j_stop(home: HomeOpt = None) -> None:
    """Stop the background Neo4j cleanly."""
    cfg = server_config(home)
    with user_errors():
        stopped = srv.stop(cfg)
    out.print("Neo4j stopped" if stopped else "Neo4j was not running")


@neo4j_app.command("status")
def neo4j_status(
    home: HomeOpt = None,
    bolt_port: Annotated[
        int | None,
        typer.Option(help="Bolt port on 127.0.0.1 (default: the one the server was started on)."),
    ] = None,
    fmt: FormatOpt = Format.table,
):
    """Is the server installed and running, and where."""
    cfg = server_config(home)
    st = srv.status(
        srv.configured_ports(cfg) if bolt_port is None else server_config(home, bolt_port)
    )
    data = st.__dict__
    emit(data, fmt, rows=[{"key": k, "value": v} for k, v in data.items()])
    if not st.running:
        raise typer.Exit(3)


def rich_progress() -> loading.Progress:
    """A load's progress: a bar on a terminal (or TTPGRAPH_PROGRESS=1); elsewhere (a log,
    CI, a pipe) plain lines on stderr at the start, every quarter and the end."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    class RichProgress(loading.Progress):
        """A progress bar on a terminal; elsewhere (a log, CI, a pipe) plain lines on stderr at the
        start, every quarter and the end."""

        def __init__(self) -> None:
            self.bar: Progress | None = None
            self.task: Any = None
            self.label = ""
            self.total = 0
            self.seen = 0
            self.said = 0
            self.t0 = 0.0

        def start(self, label: str, total: int) -> None:
            self.label, self.total, self.seen, self.said = label, total, 0, 0
            self.t0 = time.monotonic()
            if not err.is_terminal and os.environ.get("TTPGRAPH_PROGRESS") != "1":
                err.print(f"{label}: {total} to write")
                return
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=real_console(err),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(label, total=total)

        def advance(self, n: int) -> None:
            self.seen += n
            if self.bar is not None:
                self.bar.advance(self.task, n)
                return
            quarter = 4 * self.seen // max(1, self.total)
            if 0 < quarter < 4 and quarter > self.said:
                self.said = quarter
                took = time.monotonic() - self.t0
                err.print(f"{self.label}: {self.seen}/{self.total} ({took:.1f} s)")

        def done(self) -> None:
            if self.bar is not None:
                self.bar.stop()
                self.bar = None
            else:
                err.print(f"{self.label}: done in {time.monotonic() - self.t0:.1f} s")

    return RichProgress()


def inventory_remap_line(inv: dict[str, Any]) -> str:
    """One line for an inventory re-resolved against a new release."""
    line = (
        f"inventory {inv['inventory']!r} re-resolved against "
        + ", ".join(f"{d} {v}" for d, v in sorted(inv["releases"].items()))
        + f": {inv['techniques_covered_before']} -> {inv['techniques_covered']} techniques "
        f"covered, {inv['rules_changed']} of {inv['rules']} rules changed"
    )
    if inv["ids_ambiguous"]:
        line += "; ambiguous (split) tags to choose with a crosswalk: " + ", ".join(
            f"{a['id']} -> {' or '.join(a['choose_from'])}" for a in inv["ids_ambiguous"]
        )
    return line


@app.command()
def load(
    bundle: Annotated[
        str | None,
        typer.Argument(metavar="[SOURCE]", help="Same as --source (a file, a URL or 'taxii')."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help="A bundle file (.json/.json.gz, STIX 2.0 or 2.1), an https URL, or 'taxii' "
            "(the default).",
        ),
    ] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option("--domain", "-d", help="enterprise, mobile or ics (repeatable for taxii)."),
    ] = None,
    release: Annotated[
        str | None, typer.Option(help="ATT&CK release to record when the bundle does not say.")
    ] = None,
    taxii_url: Annotated[str, typer.Option(help="TAXII 2.1 API root.")] = (
        "https://attack-taxii.mitre.org/api/v21/"
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Load even when the same bytes are loaded already.")
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Load ATT&CK into the graph: validated first, written in one transaction per domain.
    A bundle whose bytes are loaded already is not written again (unless --force)."""
    if bundle is not None and source is not None and bundle != source:
        raise typer.BadParameter("give SOURCE or --source, not both", param_hint="SOURCE")
    with user_errors():
        results = loading.load_source(
            graph(),
            bundle or source or "taxii",
            domains=domain or [],
            release=release,
            taxii_url=taxii_url,
            progress=rich_progress(),
            on_fetch=lambda msg: err.print(msg),
            skip_unchanged=not force,
        )
    for r in results:
        for warning in r.warnings:
            err.print(f"warning: {r.source}: {warning}", markup=False, highlight=False)
        for inv in r.inventories:
            err.print(inventory_remap_line(inv), markup=False, highlight=False)
        if r.unchanged:
            err.print(f"{r.domain} {r.release or ''}: these bytes are loaded already, nothing "
                      "written (--force loads them again)")  # fmt: skip
    rows = [
        {
            "domain": r.domain,
            "release": r.release,
            "stix": r.spec_version,
            "nodes": r.nodes,
            "relationships": r.relationships,
            "seconds": round(r.seconds, 2),
            "written": not r.unchanged,
        }
        for r in results
    ]
    emit([r.as_dict() for r in results], fmt, rows=rows, title="Loaded")


@app.command()
def status(fmt: FormatOpt = Format.table) -> None:
    """What is loaded: releases per domain and node counts."""
    st = run(status_service.graph_status)
    if fmt == Format.json:
        emit(st, fmt)
        return
    emit(st, fmt, rows=[r.model_dump() for r in st.releases], title="Releases",
         columns=["domain", "version", "spec_version", "nodes", "relationships", "loaded_at",
                  "source"])  # fmt: skip
    if fmt == Format.table:
        emit(st, fmt, rows=[r.model_dump() for r in st.labels], title="Nodes")


app.command()(serve_command)


def find_attack_dir() -> Path | None:
    """The bundles folder for offline use: $TTPGRAPH_ATTACK_DIR or ../shared/attack."""
    env = os.environ.get("TTPGRAPH_ATTACK_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    candidates += [Path.cwd().parent / "shared" / "attack", here.parent / "shared" / "attack"]
    for c in candidates:
        if (c / "enterprise-attack-18.1.json").exists() or any(c.glob("enterprise-attack*.json")):
            return c
    return None


@app.command()
def up(
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API.")] = True,
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
) -> None:
    """Set up end to end: install and start Neo4j, load ATT&CK (offline bundles or TAXII), serve.

    Loads Enterprise, Mobile and ICS from ../shared/attack (or $TTPGRAPH_ATTACK_DIR) when the
    folder exists, otherwise from MITRE's TAXII 2.1 server. Skips a domain already loaded from
    the same bytes.
    """
    neo4j_start(home=None, bolt_port=7687, http_port=7474, timeout=180.0)
    config.get_settings.cache_clear()
    global _graph
    _graph = None
    attack = find_attack_dir()
    loaded = {r.domain: r.sha256 for r in run(status_service.releases)}
    with user_errors():
        if attack is not None:
            for name in ("enterprise", "mobile", "ics"):
                files = sorted(attack.glob(f"{name}-attack-*.json"), key=_release_key)
                if not files:
                    continue
                path = files[-1]
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if loaded.get(f"{name}-attack") == digest:
                    err.print(f"{path.name}: already loaded")
                    continue
                loading.load_source(graph(), str(path), progress=rich_progress(),
                            on_fetch=lambda m: err.print(m))  # fmt: skip
        else:
            loading.load_source(
                graph(), "taxii", progress=rich_progress(), on_fetch=lambda m: err.print(m)
            )
    status(Format.table)
    for line in where_to_look(server_config(), port, serving=serve_api):
        out.print(line, soft_wrap=True)  # URLs whole, for copying
    if serve_api:
        # A first, local run: loopback only, so no API key is needed; for anything else use
        # `ttpgraph serve` (keys on by default) and `ttpgraph apikey create`.
        api_pid_file().parent.mkdir(parents=True, exist_ok=True)
        api_pid_file().write_text(str(os.getpid()))
        try:
            serve_command(host="127.0.0.1", port=port, workers=1, auth=False, pool_budget=None)
        finally:
            api_pid_file().unlink(missing_ok=True)


# The API that `up` serves in the foreground, for `down` to stop from another terminal.
def api_pid_file() -> Path:
    return config.cache_dir() / "ttpgraph-api.pid"


def where_to_look(cfg: srv.ServerConfig, port: int, *, serving: bool) -> list[str | Text]:
    """What `up` prints last: every place to look, the password, a first query, how to stop."""
    api = f"http://127.0.0.1:{port}"
    lines: list[str | Text] = [
        "",
        bold("Where to look"),
        "  Neo4j Browser (user neo4j; the password: ttpgraph neo4j password):",
        f"    {cfg.browser_connect_url}",
    ]
    if serving:
        lines += [
            "  API docs:",
            f"    {api}/docs  and  {api}/redoc",
            "  Actor overlap page:",
            f"    {api}/ui/",
        ]
        if has_matrix_page():
            lines += ["  ATT&CK matrix page:", f"    {api}/ui/matrix?actor=APT29"]
        lines += ["  Style for Neo4j Browser (paste there):", f"    :style {api}/ui/ttpgraph.grass"]
    lines += [
        "  A first query (paste in Neo4j Browser):",
        "    MATCH (g:Group {attack_id: 'G0016'})-[u:USES]->(t:Technique)"
        "-[:IN_TACTIC]->(ta:Tactic) RETURN g, t, ta LIMIT 50",
        "",
        bold("To stop"),
        "  Ctrl-C stops the API; 'ttpgraph down' (any terminal) stops the API and Neo4j."
        if serving
        else "  'ttpgraph down' stops Neo4j.",
    ]
    return lines


def has_matrix_page() -> bool:
    """Whether this build serves the ATT&CK matrix page at /ui/matrix."""
    static = Path(__file__).resolve().parent / "static" / "ui"
    if any((static / name).is_file() for name in ("matrix.html", "matrix/index.html")):
        return True
    from .app import ROUTERS

    return any(
        getattr(r, "path", "").startswith("/ui/matrix") for router in ROUTERS for r in router.routes
    )


@app.command()
def down(
    home: HomeOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the API to stop.")] = 30.0,
) -> None:
    """Stop what `ttpgraph up` started: the API it serves and Neo4j."""
    try:
        pid = int(api_pid_file().read_text().strip())
    except (OSError, ValueError):
        pid = 0
    if pid and pid != os.getpid() and srv.pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while srv.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        gone = not srv.pid_alive(pid)
        out.print(f"API stopped (pid {pid})" if gone else f"API (pid {pid}) is still up")
    else:
        out.print("the API of 'ttpgraph up' was not running")
    api_pid_file().unlink(missing_ok=True)
    neo4j_stop(home=home)


def _release_key(path: Path) -> tuple[int, ...]:
    m = re.search(r"(\d+)\.(\d+)", path.name)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# The module that registers each command on `app`, and the command's first help paragraph: a
# command line imports only its own module, and `ttpgraph --help` lists the commands without
# importing any (tests/test_cli.py checks the table against what the modules register and say).
# The commands of this module (neo4j, load, status, serve, up, down) are always registered.
COMMANDS: dict[str, tuple[str, str]] = {
    "profile": ("cli_actors", "Every technique a group is tied to and how we know (direct, "
                "software, campaign)."),
    "compare": ("cli_actors", "Techniques common to all, unique to each, k of N, and pairwise "
                "Jaccard."),
    "similar": ("cli_actors", "Groups most similar to one group, over every group in the graph "
                "(Jaccard)."),
    "gaps": ("cli_coverage", "Gap analysis: the actors' techniques against an inventory, gaps "
             "ranked by priority."),
    "telemetry": ("cli_coverage", "Which telemetry to collect first: greedy marginal gain over "
                  "the gaps."),
    "plan": ("cli_coverage", "Remediation plan: priority_1/2/3 gaps (30/60/90 days) with "
             "sources, approach, effort."),
    "emulation": ("cli_coverage", "Atomic Red Team tests for the gaps, as Invoke-AtomicTest "
                  "lines (by number and GUID)."),
    "report": ("cli_coverage", "THREAT MODEL ASSESSMENT: coverage, tactic breakdown, top gaps, "
               "recommendation."),
    "attribute": ("cli_intel", "Who fits the observed techniques: ATT&CK groups and the "
                  "organisation's clusters ranked by rarity-weighted similarity, with the shared "
                  "and missing techniques."),
    "ioc": ("cli_intel", "What an IOC tells: the techniques, software, campaigns, groups and "
            "clusters it is linked to, with the shortest path to each."),
    "expect": ("cli_intel", "What to expect next from an actor: its techniques not observed "
               "yet, in matrix order, with whether the organisation's detection inventories "
               "cover them."),
    "overlap": ("cli_overlap", "The actor-similarity network: groups joined by technique "
                "overlap, with Louvain communities and centrality. Prints the groups, or writes "
                "a file for Gephi, Cytoscape or a report with --output."),
    "browser-kit": ("cli_overlap", "Write the Neo4j Browser kit: ttpgraph.grass (drop it onto "
                    "Browser), the query pack as favorites (ttpgraph-favorites.zip, drop it onto "
                    "Browser) and one .cypher file per query."),
    "diff": ("cli_releases", "What changes between two ATT&CK releases, and which inventory "
             "rules it breaks."),
    "release-impact": ("cli_releases", "Inventory rules tagged with techniques the loaded "
                       "release revoked, deprecated or does not know, with the technique to "
                       "retag to."),
    "sync": ("cli_releases", "Fetch from TAXII only what was added since the last load, apply "
             "it, report what changed."),
    "groups": ("cli_actors", "Find groups."),
    "apikey": ("cli_apikey", "API keys for the HTTP API, stored hashed in api-keys.json next to "
               "the settings file (or TTPGRAPH_API_KEYS_FILE)."),
    "inventory": ("cli_coverage", "Detection-rule inventories: import, list, show, remap, "
                  "delete."),
    "intel": ("cli_intel", "Import the organisation's intelligence (OpenCTI, ATT&CK Workbench, "
              "MISP) and manage it."),
    "incident": ("cli_intel", "Incidents: a named set of observed techniques (and IOCs)."),
    "layer": ("cli_layers", "ATT&CK Navigator layers: every answer as a layer file (.json, "
              ".svg, .xlsx), and layers as input."),
    "threat-model": ("cli_threat_models", "Saved threat models: the actors you defend against, "
                     "held against an inventory."),
}  # fmt: skip
OWN_COMMANDS = frozenset({"neo4j", "load", "status", "serve", "up", "down"})


def register_commands(args: list[str]) -> None:
    """Import the module of the command the command line runs; every module for a word that is
    no command (typer then suggests the closest); none for the root's help."""
    import importlib

    word = next((a for a in args if not a.startswith("-")), None)  # the root has flags only
    if word is None or word in OWN_COMMANDS:
        return
    modules = [COMMANDS[word][0]] if word in COMMANDS else [m for m, _ in COMMANDS.values()]
    for name in dict.fromkeys(modules):
        importlib.import_module(f"api.{name}")


def main() -> None:
    # A command makes most of its objects once and keeps them (the modules it imports, the
    # rows it loads, the answer): with the collector's default pass every 700 allocations one
    # `profile` spent ~50 ms collecting, two of them full passes; every 10,000 it is ~25 ms
    # (0.42 -> 0.40 s wall), and cycles are still collected.
    gc.set_threshold(10_000, 10, 10)
    # The driver logs every retry as a warning; a command says what went wrong in one line.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    # --wide is the root's option; accept it after the command too (`ttpgraph status --wide`).
    args = sys.argv[1:]
    if "--wide" in args[1:] and "--" not in args[: args.index("--wide")]:
        args.remove("--wide")
        args.insert(0, "--wide")
    register_commands(args)
    try:
        app(args=args)
    finally:
        if _graph is not None:
            _graph.close()


if __name__ == "__main__":
    # Run as `python -m api.cli`: use the api.cli module itself, where commands register.
    from api.cli import main as _main

    _main()
