"""A fork server for the ``ttpgraph`` command, so that a test can run many command lines through
bash as written without paying the CLI's import time on each one.

``python -m tests.cli_forkserver SOCKET`` imports the CLI once and listens on a Unix socket. The
``ttpgraph`` client (:data:`CLIENT`, written to a ``bin/`` folder put first on PATH) sends its
argv, cwd and environment with its stdin/stdout/stderr file descriptors; the server forks, the
child takes those descriptors, folder and environment and runs ``api.cli.main()`` exactly as
``python -m api.cli`` would, and the client exits with the child's exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import traceback

CLIENT = r"""#!{python} -S
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({sock!r})
msg = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(s, [struct.pack("!I", len(msg)) + msg], [0, 1, 2])
data = b""
while len(data) < 4:
    chunk = s.recv(4 - len(data))
    if not chunk:
        sys.exit(70)  # the child died without an exit code
    data += chunk
sys.exit(struct.unpack("!i", data)[0])
"""


def write_client(path: str, sock: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(CLIENT.format(python=sys.executable, sock=sock))
    os.chmod(path, 0o755)


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
    (size,) = struct.unpack("!I", data[:4])
    body = data[4:]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("client went away")
        body += chunk
    return json.loads(body), fds


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["ttpgraph", *request["argv"]]
        sys.modules["__main__"].__package__ = None  # click names the program from argv[0]
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command waits for its own children
        from api.cli import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - printed like the interpreter would
            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe
                stream.flush()
        try:
            conn.sendall(struct.pack("!i", code))
        finally:
            os._exit(code)


def serve(path: str) -> None:
    # Everything a command imports at start-up, imported once here.
    import api.cli
    import api.cli_actors  # noqa: F401
    import api.cli_apikey  # noqa: F401
    import api.cli_coverage  # noqa: F401
    import api.cli_intel  # noqa: F401
    import api.cli_layers  # noqa: F401
    import api.cli_overlap  # noqa: F401
    import api.cli_releases  # noqa: F401
    import api.cli_threat_models  # noqa: F401

    assert api.cli.main
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        try:
            request, fds = _recv_request(conn)
        except (OSError, ValueError, ConnectionError):
            conn.close()
            continue
        if os.fork() == 0:
            server.close()
            _child(conn, request, fds)
        for fd in fds:
            os.close(fd)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
