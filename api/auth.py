"""API keys and the gate every request passes: URL length, authentication, body size.

Keys live hashed in a JSON file next to the settings file (``api-keys.json``, mode 0600), not in
the graph: the read-only Cypher endpoint can read anything in the graph and Neo4j Community has
no per-label access control, so keys stored there would be visible to every read key; a file
also lets a key be checked with one ``stat`` instead of a Bolt round trip, and keeps auth working
(401/403 are still answered) while Neo4j is away. Replicas share keys by sharing the file
(a mounted secret) or ``TTPGRAPH_API_KEYS_FILE``.

A key is ``ttpg_<id>_<secret>`` with 256 random bits; the file keeps its SHA-256. A fast hash is
right for random tokens (nothing to guess, unlike a password) and costs microseconds per request.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queries.errors import InvalidInput, NotFound

from .paths import ASSETS_PREFIX, DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL

if TYPE_CHECKING:  # the settings (pydantic) are imported when used: the CLI's --help stays quick
    from queries.settings import Settings

KEY_PREFIX = "ttpg"
HEADER = "X-API-Key"
log = logging.getLogger("ttpgraph.api")


async def send_problem(scope: Scope, send: Send, *args: Any, **kwargs: Any) -> None:
    """api.problems.send_problem, imported when first needed (the CLI's apikey commands use
    this module without FastAPI)."""
    from .problems import send_problem as send_it

    await send_it(scope, send, *args, **kwargs)


class Role(StrEnum):
    read = "read"
    write = "write"


RANK = {Role.read: 1, Role.write: 2}

# A POST (or PUT, PATCH, DELETE) route that only reads declares it:
#   @router.post("/layers/combine", openapi_extra=READ_ONLY)
# Every other non-GET route needs a write key. The marker also shows in the OpenAPI document.
ROLE_KEY = "x-required-role"
READ_ONLY: dict[str, Any] = {ROLE_KEY: Role.read.value}
# Bodies are limited to TTPGRAPH_MAX_BODY_MB, multipart uploads to TTPGRAPH_MAX_UPLOAD_MB; a
# route that needs another limit declares it:
#   @router.post("/inventories", openapi_extra={"x-max-body-mb": 64})
BODY_KEY = "x-max-body-mb"


def keys_path(settings: Settings) -> Path:
    if settings.ttpgraph_api_keys_file:
        return Path(settings.ttpgraph_api_keys_file)
    from queries.settings import config_dir

    return config_dir() / "api-keys.json"


@dataclass
class ApiKey:
    id: str
    name: str
    role: Role
    hash: str
    created_at: str
    revoked: bool = False
    revoked_at: str | None = None

    def public(self) -> dict[str, Any]:
        """What `apikey list` shows: everything but the hash."""
        d = asdict(self)
        d.pop("hash")
        d["role"] = self.role.value
        return d


class KeyStoreError(RuntimeError):
    """The keys file exists but cannot be read: auth fails closed."""


def _digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """API keys in one JSON file, re-read whenever it changes (revocation is immediate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    # ------------------------------------------------------------ reading

    def _load(self) -> dict[str, ApiKey]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return self._keys
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._keys = self._parse(self.path.read_bytes())
            self._stamp = stamp
        return self._keys

    def _parse(self, raw: bytes) -> dict[str, ApiKey]:
        try:
            data = json.loads(raw)
            keys = {}
            for k in data["keys"]:
                key = ApiKey(**{**k, "role": Role(k["role"])})
                keys[key.id] = key
            return keys
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"{self.path}: not an API keys file ({exc})") from exc

    def list_keys(self) -> list[ApiKey]:
        return sorted(self._load().values(), key=lambda k: (k.created_at, k.id))

    def active_count(self) -> int:
        return sum(1 for k in self._load().values() if not k.revoked)

    def verify(self, token: str) -> ApiKey | None:
        """The live key this token is, or None (unknown, malformed or revoked)."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        key = self._load().get(parts[1])
        if key is None or key.revoked:
            return None
        return key if hmac.compare_digest(key.hash, _digest(token)) else None

    # ------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKey]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._stamp = None
            keys = dict(self._load())
            yield keys
            body = {"version": 1, "keys": [asdict(k) for k in keys.values()]}
            tmp = self.path.with_name(self.path.name + ".tmp")
            wfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(wfd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, indent=2, default=str)
            os.replace(tmp, self.path)
            os.chmod(self.path, 0o600)
            self._stamp = None
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def create(self, *, role: Role | str, name: str | None = None) -> tuple[ApiKey, str]:
        """A new key; returns it and the token, which is shown once and never stored."""
        try:
            role = Role(role)
        except ValueError:
            raise InvalidInput(f"role {role!r}: use read or write") from None
        name = (name or "").strip() or f"{role.value} key"
        if len(name) > 100 or not name.isprintable():
            raise InvalidInput("name: at most 100 printable characters")
        with self._locked() as keys:
            key_id = secrets.token_hex(6)
            while key_id in keys:
                key_id = secrets.token_hex(6)
            token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            key = ApiKey(key_id, name, role, _digest(token), _now())
            keys[key_id] = key
        return key, token

    def revoke(self, key_id: str) -> ApiKey:
        with self._locked() as keys:
            key = keys.get(key_id.strip())
            if key is None:
                raise NotFound(
                    f"API key {key_id!r}: no such key in {self.path}",
                    suggestions=sorted(keys)[:10],
                )
            if not key.revoked:
                key.revoked, key.revoked_at = True, _now()
        return key


# ---------------------------------------------------------------- the gate


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and 'localhost'. Non-IP names other than localhost are not loopback."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_remote_ip(host: Any) -> bool:
    """A network address that is not loopback (in-process test clients and Unix sockets have no
    IP address and are not remote)."""
    if not isinstance(host, str):
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Policy:
    role: Role | None  # None: open to everyone
    max_body: int | None  # None: the defaults (uploads or other bodies)


class Gate:
    """Pure ASGI middleware: 414 for long URLs, 401/403 for missing, bad or weak keys (or, with
    auth off, for any connection that is not loopback), 413 for big bodies."""

    def __init__(self, app: ASGIApp, *, settings: Settings, keys: KeyStore) -> None:
        self.app = app
        self.auth = settings.ttpgraph_api_auth
        self.keys = keys
        self.max_url = settings.ttpgraph_max_url_chars
        self.max_body = int(settings.ttpgraph_max_body_mb * 1024 * 1024)
        self.max_upload = int(settings.ttpgraph_max_upload_mb * 1024 * 1024)
        self._policies: dict[tuple[str, str], Policy] = {}
        self._table: list[tuple[re.Pattern[str], set[str], Role | None, float | None]] | None = None
        self._open: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # When the request arrived (time.monotonic()): deadlines count from here, reading the
        # body and checking the key included (request.state.arrived).
        scope.setdefault("state", {})["arrived"] = time.monotonic()
        if (
            len(scope["raw_path"] if scope.get("raw_path") else scope["path"])
            + len(scope.get("query_string", b""))
            > self.max_url
        ):
            await send_problem(scope, send, 414, "URI too long",
                               f"the URL is longer than {self.max_url} characters",
                               type="uri-too-long")  # fmt: skip
            return
        policy = self.policy(scope)
        if policy.role is not None and not await self._admit(scope, send, policy.role):
            return
        limit = policy.max_body
        if limit is None:
            ctype = (_header(scope, b"content-type") or "").lower()
            limit = self.max_upload if ctype.startswith("multipart/") else self.max_body
        await self._limit_body(scope, receive, send, limit)

    # ------------------------------------------------------------ auth

    async def _admit(self, scope: Scope, send: Send, role: Role) -> bool:
        if not self.auth:
            if _is_remote_ip((scope.get("server") or (None,))[0]) or _is_remote_ip(
                (scope.get("client") or (None,))[0]
            ):
                await send_problem(scope, send, 403, "Forbidden",
                                   "authentication is off, so this API only answers loopback "
                                   "connections; turn TTPGRAPH_API_AUTH on to serve others",
                                   type="forbidden")  # fmt: skip
                return False
            return True
        token = _token(scope)
        challenge = [(b"www-authenticate", b'Bearer realm="ttpgraph"')]
        if token is None:
            await send_problem(scope, send, 401, "Unauthorized",
                               f"an API key is required: send it in the {HEADER} header or as "
                               "'Authorization: Bearer <key>' (create one with "
                               "'ttpgraph apikey create --role read')",
                               headers=challenge, type="unauthorized")  # fmt: skip
            return False
        try:
            key = self.keys.verify(token)
        except (KeyStoreError, OSError):
            log.exception("API keys cannot be read; every request is refused")  # fail closed
            await send_problem(scope, send, 503, "API keys unavailable",
                               "the server cannot read its API keys; see its log",
                               type="keys-unavailable")  # fmt: skip
            return False
        if key is None:
            await send_problem(scope, send, 401, "Unauthorized",
                               "the API key is not valid (unknown, malformed or revoked)",
                               headers=challenge, type="unauthorized")  # fmt: skip
            return False
        if RANK[key.role] < RANK[role]:
            await send_problem(scope, send, 403, "Forbidden",
                               f"this operation needs a {role.value} key; key {key.id} "
                               f"({key.name}) is a {key.role.value} key",
                               type="forbidden")  # fmt: skip
            return False
        scope.setdefault("state", {})["api_key"] = key.id
        return True

    # ------------------------------------------------------------ routes

    def policy(self, scope: Scope) -> Policy:
        method, path = scope["method"], scope["path"]
        cached = self._policies.get((method, path))
        if cached is not None:
            return cached
        app = scope.get("app")
        if self._table is None:
            self._table, self._open = _route_table(app)
        role: Role | None = Role.read if method in ("GET", "HEAD", "OPTIONS") else Role.write
        max_body: int | None = None
        if path in self._open or path.startswith(OPEN_PREFIXES):
            role = None
        else:
            for pattern, methods, declared_role, declared_body in self._table:
                if method in methods and pattern.fullmatch(path):
                    role = declared_role or role
                    if declared_body is not None:
                        max_body = int(declared_body * 1024 * 1024)
                    break
        result = Policy(role, max_body)
        if len(self._policies) < 4096:  # bounded: paths with ids are many
            self._policies[(method, path)] = result
        return result

    # ------------------------------------------------------------ body size

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                too_big = False
            if too_big:
                await _too_large(scope, send, limit)
                return
        if scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        seen = 0
        exceeded = False
        replaced = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, f"the request body is larger than {_mb(limit)}")
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the app made of a body cut short (a 400 from a parser), the answer is
            # this 413.
            nonlocal replaced
            if replaced:
                return
            if exceeded and message["type"] == "http.response.start":
                replaced = True
                await _too_large(scope, send, limit)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB"


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    detail = f"the request body is larger than {_mb(limit)}"
    await send_problem(scope, send, 413, "Content too large", detail, type="too-large")


# Static pages with no data in them (the browser UI's files, the docs' scripts); their API calls
# need a key.
OPEN_PREFIXES = ("/ui/", ASSETS_PREFIX)


def open_paths(app: Any) -> set[str]:
    """Paths anyone may call: liveness, readiness and the API's documentation."""
    paths = {"/health", "/ready", "/ui", DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL}
    if app is not None and app.openapi_url:
        paths.add(app.openapi_url)
    return paths


def _route_table(
    app: Any,
) -> tuple[list[tuple[re.Pattern[str], set[str], Role | None, float | None]], set[str]]:
    """(path pattern, methods, declared role, declared body limit) per operation, read from the
    app's OpenAPI document — the public description of its routes. A route missing there gets
    the defaults: GET reads, anything else writes."""
    table: list[tuple[re.Pattern[str], set[str], Role | None, float | None]] = []
    if app is None:
        return table, open_paths(None)
    try:
        spec = app.openapi()
    except Exception:  # noqa: BLE001 - a broken schema must not open the API
        log.exception("OpenAPI document failed; every route gets the default roles")
        return table, open_paths(app)
    for path, item in spec.get("paths", {}).items():
        regex = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", path)
        )
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            declared = op.get(ROLE_KEY)
            role = Role(declared) if declared in ("read", "write") else None
            body = op.get(BODY_KEY)
            table.append((re.compile(regex), {method.upper()}, role,
                          float(body) if isinstance(body, int | float) else None))  # fmt: skip
    return table, open_paths(app)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def _token(scope: Scope) -> str | None:
    api_key = _header(scope, b"x-api-key")
    if api_key and api_key.strip():
        return api_key.strip()
    auth = _header(scope, b"authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


# ---------------------------------------------------------------- OpenAPI


def document_security(spec: dict[str, Any], open_paths: set[str]) -> dict[str, Any]:
    """Declare the two ways to send a key, and on each operation the role it needs."""
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        {
            "ApiKey": {"type": "apiKey", "in": "header", "name": HEADER},
            "Bearer": {"type": "http", "scheme": "bearer", "description": "the same API key"},
        }
    )
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or method.startswith("x-"):
                continue
            if path in open_paths:
                op["security"] = []
                continue
            role = op.get(ROLE_KEY) or ("read" if method in ("get", "head") else "write")
            op[ROLE_KEY] = role
            op["security"] = [{"ApiKey": []}, {"Bearer": []}]
    return spec
