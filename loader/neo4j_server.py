"""Provision and run Neo4j Community 5.26 LTS from its Maven Central artifacts, without Docker.

``install`` resolves ``org.neo4j:neo4j`` and ``org.neo4j.client:neo4j-browser`` with Maven into a
cache folder outside the repository; ``start`` writes a loopback-only neo4j.conf sized for a
2-core machine, sets the initial password, launches ``CommunityEntryPoint`` in the background
and waits until Bolt answers; ``stop`` sends SIGTERM and waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from queries.settings import cache_dir

NEO4J_VERSION = "5.26.30"
BROWSER_VERSION = "5.24.0"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# The flags the official launcher adds through server.jvm.additional for 5.26 (java is started
# directly here, so they must be passed by hand).
JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
]


class ServerError(RuntimeError):
    """Provisioning or running the server failed; the message says what and where."""


@dataclass
class ServerConfig:
    """Where the server lives and how it listens. Defaults are the user's own instance."""

    home: Path = field(default_factory=lambda: cache_dir() / "neo4j-instance")
    lib: Path = field(default_factory=lambda: cache_dir() / f"neo4j-{NEO4J_VERSION}" / "lib")
    bolt_port: int = 7687
    http_port: int = 7474
    heap: str = "2g"
    pagecache: str = "512m"
    password: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    """neo4j.conf settings that replace or add to the written ones (tests set limits low)."""

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/browser/"

    @property
    def browser_connect_url(self) -> str:
        """Neo4j Browser with its connect form filled in (bolt URL, user neo4j, password auth):
        only the password is left to type (``ttpgraph neo4j password`` prints it)."""
        bolt = quote(f"bolt://neo4j@127.0.0.1:{self.bolt_port}", safe="")
        return f"{self.browser_url}?connectURL={bolt}&preselectAuthMethod=NATIVE"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "ttpgraph-neo4j.pid"

    @property
    def password_file(self) -> Path:
        return self.home / "conf" / "ttpgraph-password"

    @property
    def console_log(self) -> Path:
        return self.home / "logs" / "console.log"


def is_installed(cfg: ServerConfig) -> bool:
    return (cfg.lib / ".complete").exists()


def install(cfg: ServerConfig, *, quiet: bool = True) -> Path:
    """Resolve the server and browser jars from Maven Central into ``cfg.lib`` (idempotent)."""
    if is_installed(cfg):
        return cfg.lib
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServerError("Maven ('mvn') is not on PATH: install it (apt-get install maven)")
    check_java()
    cfg.lib.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ttpgraph-mvn-", dir=cfg.lib.parent) as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(resources.files("loader").joinpath("neo4j-pom.xml").read_text("utf-8"))
        out = Path(tmp) / "lib"
        cmd = [
            mvn,
            "-B",
            *(["-q"] if quiet else []),
            "-f",
            str(pom),
            f"-Dneo4j.version={NEO4J_VERSION}",
            f"-Dbrowser.version={BROWSER_VERSION}",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={out}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln]
            raise ServerError(
                "Maven could not resolve Neo4j "
                f"{NEO4J_VERSION}: {(lines or ['exit code ' + str(proc.returncode)])[0]}"
            )
        jars = list(out.glob("*.jar"))
        if not any(j.name.startswith("neo4j-server-") for j in jars):
            raise ServerError(f"Maven resolved {len(jars)} jars but no neo4j-server jar")
        (out / ".complete").write_text(f"{NEO4J_VERSION} {BROWSER_VERSION}\n")
        if cfg.lib.exists():
            shutil.rmtree(cfg.lib)
        os.replace(out, cfg.lib)
    return cfg.lib


def check_java() -> str:
    java = shutil.which("java")
    if not java:
        raise ServerError("Java is not on PATH: Neo4j 5.26 needs Java 17 or 21")
    proc = subprocess.run([java, "-version"], capture_output=True, text=True)
    m = re.search(r'version "(\d+)', proc.stderr + proc.stdout)
    major = int(m.group(1)) if m else 0
    if major not in (17, 21):
        raise ServerError(f"Neo4j 5.26 needs Java 17 or 21; 'java' on PATH is version {major}")
    return java


def neo4j_conf(cfg: ServerConfig) -> str:
    lines = [
        "# Written by ttpgraph: loopback only, auth on, sized for a 2-core machine.",
        "server.default_listen_address=127.0.0.1",
        "server.default_advertised_address=127.0.0.1",
        f"server.bolt.listen_address=127.0.0.1:{cfg.bolt_port}",
        f"server.bolt.advertised_address=127.0.0.1:{cfg.bolt_port}",
        f"server.http.listen_address=127.0.0.1:{cfg.http_port}",
        f"server.http.advertised_address=127.0.0.1:{cfg.http_port}",
        "server.https.enabled=false",
        # LOAD CSV may read only the instance's own import folder, never the host's files.
        "server.directories.import=import",
        "dbms.security.auth_enabled=true",
        f"server.memory.heap.initial_size={cfg.heap}",
        f"server.memory.heap.max_size={cfg.heap}",
        f"server.memory.pagecache.size={cfg.pagecache}",
        "dbms.memory.transaction.total.max=1g",
        "db.tx_log.rotation.retention_policy=2 files",
        "server.threads.worker_count=8",
        # No usage reporting, no product analytics; Browser fetches remote content (:style
        # http://127.0.0.1:8000/ui/ttpgraph.grass, guides) only from this machine.
        "dbms.usage_report.enabled=false",
        "client.allow_telemetry=false",
        "browser.remote_content_hostname_whitelist=localhost,127.0.0.1",
    ]
    lines = [ln for ln in lines if ln.split("=", 1)[0] not in cfg.settings]
    lines += [f"{k}={v}" for k, v in cfg.settings.items()]
    return "\n".join([*lines, ""])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def running_pid(cfg: ServerConfig) -> int | None:
    try:
        pid = int(cfg.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def resolve_password(cfg: ServerConfig) -> str:
    """The configured password, the one set at first start, or a new random one."""
    if cfg.password:
        return cfg.password
    if cfg.password_file.exists():
        return cfg.password_file.read_text(encoding="utf-8").strip()
    return secrets.token_urlsafe(18)


def _java_cmd(cfg: ServerConfig, java: str) -> list[str]:
    cp = os.pathsep.join(
        [str(cfg.home / "plugins" / "*"), str(cfg.home / "conf" / "*"), str(cfg.lib / "*")]
    )
    return [
        java,
        *JVM_FLAGS,
        f"-Xms{cfg.heap}",
        f"-Xmx{cfg.heap}",
        "-cp",
        cp,
        "org.neo4j.server.CommunityEntryPoint",
        f"--home-dir={cfg.home}",
        f"--config-dir={cfg.home / 'conf'}",
        "--console-mode",
    ]


def _set_initial_password(cfg: ServerConfig, java: str, password: str) -> None:
    env = dict(os.environ, NEO4J_HOME=str(cfg.home), NEO4J_CONF=str(cfg.home / "conf"))
    proc = subprocess.run(
        [java, "-cp", str(cfg.lib / "*"), "org.neo4j.cli.AdminTool", "dbms",
         "set-initial-password", password],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()[:1]
        raise ServerError(f"setting the initial Neo4j password failed: {first}")
    fd = os.open(cfg.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")


@dataclass
class StartResult:
    pid: int
    reused: bool
    password: str
    bolt_uri: str
    browser_url: str
    seconds: float


def start(
    cfg: ServerConfig, *, timeout: float = 120.0, watch_pid: int | None = None
) -> StartResult:
    """Start the server in the background (or reuse the running one) and wait for Bolt.

    ``watch_pid``: stop the server by itself when that process ends (used by the tests).
    """
    t0 = time.monotonic()
    pid = running_pid(cfg)
    if pid is not None:
        password = resolve_password(cfg)
        wait_for_bolt(cfg, password, timeout=timeout, pid=pid)
        return StartResult(pid, True, password, cfg.bolt_uri, cfg.browser_url, 0.0)
    if not is_installed(cfg):
        install(cfg)
    java = check_java()
    for port in (cfg.bolt_port, cfg.http_port):
        if _port_open(port):
            raise ServerError(f"port 127.0.0.1:{port} is already in use by another process")
    for sub in ("conf", "data", "logs", "plugins", "import", "run"):
        (cfg.home / sub).mkdir(parents=True, exist_ok=True)
    (cfg.home / "conf" / "neo4j.conf").write_text(neo4j_conf(cfg), encoding="utf-8")
    first_start = (
        not (cfg.home / "data" / "dbms" / "auth.ini").exists()
        and not (cfg.home / "data" / "databases" / "system").exists()
    )
    if first_start:
        password = cfg.password or secrets.token_urlsafe(18)
        _set_initial_password(cfg, java, password)
    else:
        password = resolve_password(cfg)
    log = open(cfg.console_log, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        _java_cmd(cfg, java),
        cwd=cfg.home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    cfg.pid_file.write_text(str(proc.pid))
    if watch_pid is not None:
        _spawn_watchdog(proc.pid, watch_pid)
    try:
        wait_for_bolt(cfg, password, timeout=timeout, pid=proc.pid)
    except ServerError:
        stop(cfg)
        raise
    return StartResult(
        proc.pid, False, password, cfg.bolt_uri, cfg.browser_url, time.monotonic() - t0
    )


def _spawn_watchdog(server_pid: int, parent_pid: int) -> None:
    code = (
        "import os,signal,sys,time\n"
        "s,p=int(sys.argv[1]),int(sys.argv[2])\n"
        "def alive(x):\n"
        "    try: os.kill(x,0); return True\n"
        "    except ProcessLookupError: return False\n"
        "while alive(s) and alive(p): time.sleep(1)\n"
        "if alive(s):\n"
        "    os.kill(s,signal.SIGTERM)\n"
        "    for _ in range(60):\n"
        "        time.sleep(1)\n"
        "        if not alive(s): break\n"
        "    else: os.kill(s,signal.SIGKILL)\n"
    )
    subprocess.Popen(
        [sys.executable, "-c", code, str(server_pid), str(parent_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _log_tail(cfg: ServerConfig, n: int = 5) -> str:
    try:
        lines = cfg.console_log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln for ln in lines if "ERROR" in ln or "Exception" in ln]
    return " | ".join((errors or lines)[-n:])


def wait_for_bolt(cfg: ServerConfig, password: str, *, timeout: float, pid: int) -> None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, ServiceUnavailable

    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid):
            raise ServerError(f"Neo4j exited during start-up; {cfg.console_log}: {_log_tail(cfg)}")
        if _port_open(cfg.bolt_port):
            try:
                with GraphDatabase.driver(cfg.bolt_uri, auth=("neo4j", password)) as drv:
                    drv.verify_connectivity()
                    drv.execute_query("RETURN 1", database_="neo4j")
                return
            except AuthError as exc:
                raise ServerError(
                    f"Neo4j at {cfg.bolt_uri} refused the password in {cfg.password_file}"
                ) from exc
            except (ServiceUnavailable, OSError, Exception):  # noqa: BLE001 - still starting
                pass
        if time.monotonic() > deadline:
            raise ServerError(f"Neo4j did not answer on {cfg.bolt_uri} within {timeout:.0f} s")
        time.sleep(0.5)


def stop(cfg: ServerConfig, *, timeout: float = 60.0) -> bool:
    """Stop the server cleanly (SIGTERM, then SIGKILL after ``timeout``). False if not running."""
    pid = running_pid(cfg)
    if pid is None:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.2)
        with contextlib.suppress(ChildProcessError):  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def kill(cfg: ServerConfig) -> None:
    """SIGKILL the server (fault-injection tests)."""
    pid = running_pid(cfg)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)


@dataclass
class ServerStatus:
    installed: bool
    running: bool
    pid: int | None
    version: str
    home: str
    bolt_uri: str
    browser_url: str


def configured_ports(cfg: ServerConfig) -> ServerConfig:
    """``cfg`` with the bolt and HTTP ports the server in ``cfg.home`` was started on (read
    from the neo4j.conf that ``start`` wrote); unchanged when there is none."""
    conf = cfg.home / "conf" / "neo4j.conf"
    try:
        text = conf.read_text(encoding="utf-8")
    except OSError:
        return cfg

    def port(key: str, default: int) -> int:
        m = re.search(rf"^server\.{key}\.listen_address=[^:\n]*:(\d+)\s*$", text, re.M)
        return int(m.group(1)) if m else default

    return dataclasses.replace(
        cfg, bolt_port=port("bolt", cfg.bolt_port), http_port=port("http", cfg.http_port)
    )


def status(cfg: ServerConfig) -> ServerStatus:
    pid = running_pid(cfg)
    return ServerStatus(
        installed=is_installed(cfg),
        running=pid is not None and _port_open(cfg.bolt_port),
        pid=pid,
        version=NEO4J_VERSION,
        home=str(cfg.home),
        bolt_uri=cfg.bolt_uri,
        browser_url=cfg.browser_url,
    )
