"""The project's own Neo4j: Browser answers, start reuses a running server, status reports."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from loader import neo4j_server as srv


def test_browser_answers(neo4j_server: srv.ServerConfig) -> None:
    with urllib.request.urlopen(neo4j_server.browser_url, timeout=10) as resp:
        body = resp.read().decode("utf-8", "replace")
    assert resp.status == 200
    assert "<title>Neo4j Browser</title>" in body


def test_start_reuses_the_running_server(neo4j_server: srv.ServerConfig) -> None:
    pid = srv.running_pid(neo4j_server)
    res = srv.start(neo4j_server)
    assert res.reused and res.pid == pid


def test_status_and_config(neo4j_server: srv.ServerConfig) -> None:
    st = srv.status(neo4j_server)
    assert st.installed and st.running and st.version.startswith("5.26.")
    conf = (neo4j_server.home / "conf" / "neo4j.conf").read_text()
    assert "server.default_listen_address=127.0.0.1" in conf
    assert "dbms.security.auth_enabled=true" in conf
    assert "dbms.usage_report.enabled=false" in conf
    # the password file is readable by its owner only
    assert neo4j_server.password_file.stat().st_mode & 0o077 == 0


def test_ports_listen_on_loopback_only(neo4j_server: srv.ServerConfig) -> None:
    """Every socket listening on the server's ports is bound to 127.0.0.1 (/proc/net/tcp)."""
    wanted = {neo4j_server.bolt_port, neo4j_server.http_port}
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            addr, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in wanted:  # LISTEN
                found[int(port, 16)] = addr
    assert set(found) == wanted
    for addr in found.values():
        loopback = ("0100007F", "0000000000000000FFFF00000100007F")  # 127.0.0.1, v4-mapped
        assert addr in loopback, addr
