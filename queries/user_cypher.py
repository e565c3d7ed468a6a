"""A caller's own Cypher, run read-only and bounded: the core of ``POST /api/v1/cypher``.

What a hostile read key could do to Neo4j with one statement, and what stops it here:

- **Writes** — two locks, either enough: Neo4j plans the query first (``EXPLAIN``) and it is
  refused unless Neo4j calls it read-only and it uses no operator on the deny-list
  (``screen_plan``); then it runs in a READ transaction, where Neo4j itself refuses any write.
- **Work Neo4j cannot stop.** Neo4j 5.26 checks its transaction timeout (and ``TERMINATE
  TRANSACTION``) between rows, not inside an expression or the planner: measured on 5.26.30,
  ``RETURN reduce(a = 0, x IN range(1, 2000000000) | a + x)`` ran 47 s under a 2 s timeout,
  ``size([x IN range(1, 2000000000) WHERE x = -1])`` 55 s after ``TERMINATE TRANSACTION``,
  and planning 60 chained relationship patterns took 58 s. So ``screen_text`` refuses, before
  Neo4j sees the text, the shapes that make either unbounded: too many relationship patterns or
  clauses (planning time grows faster than linearly with them), ``range()`` beyond
  ``MAX_RANGE`` values or with computed bounds, a list iteration (``[x IN ...]``, ``reduce``,
  ``any/all/none/single``) in the body of another (unless over ``labels()``, ``keys()``,
  ``nodes()``, ``relationships()`` or a stored property), and a ``reduce`` whose step puts
  its accumulator twice into its value (doubling). The screen is lexical, so it cannot see
  every way to make a huge list; what slips through still ends for the caller at the
  deadline, and its transaction is counted against the caller's concurrency slots for as long
  as Neo4j keeps it (``endpoint_transactions``), so one key can never hold more Neo4j threads
  than its slots.
- **Huge answers** — at most ``max_rows`` rows and ``max_bytes`` bytes of JSON, counted row by
  row as they arrive (small fetches), so an answer is refused (``AnswerTooLarge``) before it is
  held whole.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import neo4j
from neo4j.exceptions import AuthError, ClientError, DatabaseError, TransientError

from .catalog import Q
from .errors import InvalidInput, TtpgraphError
from .graph import TIMEOUT_CODES, Forbidden, neo4j_errors

if TYPE_CHECKING:
    from .graph import AsyncGraph

# Transaction metadata of every transaction this endpoint opens (SHOW TRANSACTIONS finds them).
APP = "ttpgraph-cypher-endpoint"
# Limits of the text screen (docs/api.md lists them).
MAX_QUERY_CHARS = 20_000
MAX_RELATIONSHIP_PATTERNS = 16
MAX_CLAUSES = 40
MAX_RANGE = 100_000
MAX_PARAM_DEPTH = 32
MAX_VALUE_DEPTH = 64
# Records fetched per round trip: an answer is checked against its byte limit this often.
FETCH_SIZE = 25


class AnswerTooLarge(TtpgraphError):
    """The answer is past the endpoint's byte limit (the caller should ask for less)."""

    status = 422
    title = "Answer too large"


# ---------------------------------------------------------------- the text screen


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z))
    | (?P<name>`(?:[^`]|``)*(?:`|\Z)|[^\W\d]\w*)
    | (?P<param>\$(?:\w+|`[^`]*`))
    | (?P<number>\d[\w.]*)
    | (?P<op><--|-->|<-|->|--|\.\.|<>|<=|>=|=~|\+=|\S)
    """,
    re.VERBOSE | re.DOTALL,
)
_CLAUSES = frozenset({"MATCH", "WITH", "UNWIND", "CALL", "UNION", "RETURN", "FOREACH", "LOAD"})
_QUANTIFIERS = frozenset({"ANY", "ALL", "NONE", "SINGLE"})


@dataclass(frozen=True)
class Token:
    kind: str  # name, param, number, string, op
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokens(query: str) -> list[Token]:
    """Cypher tokens (strings and comments kept out of the way); linear in the text."""
    out = []
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup or "op"
        if kind not in ("space", "comment"):
            out.append(Token(kind, m.group(), m.start()))
    return out


def _int_arg(tok: list[Token], params: Mapping[str, Any]) -> int | None:
    """An integer literal or integer parameter (optionally negated), else None."""
    sign = 1
    if len(tok) == 2 and tok[0].text == "-":
        sign, tok = -1, tok[1:]
    if len(tok) != 1:
        return None
    t = tok[0]
    if t.kind == "number" and t.text.isdigit():
        return sign * int(t.text)
    if t.kind == "param":
        value = params.get(t.text[1:].strip("`"))
        if isinstance(value, int) and not isinstance(value, bool):
            return sign * value
    return None


def _call_args(toks: list[Token], open_at: int) -> tuple[list[list[Token]], int]:
    """The comma-separated arguments of the call whose '(' is at ``open_at``; and the index
    just past its ')'."""
    depth, args, cur = 0, [], []
    i = open_at
    while i < len(toks):
        t = toks[i]
        if t.text in "([{":
            depth += 1
            if depth > 1:
                cur.append(t)
        elif t.text in ")]}":
            depth -= 1
            if depth == 0:
                args.append(cur)
                return args, i + 1
            cur.append(t)
        elif t.text == "," and depth == 1:
            args.append(cur)
            cur = []
        else:
            cur.append(t)
        i += 1
    args.append(cur)
    return args, i


def screen_text(query: str, params: Mapping[str, Any]) -> None:
    """Refuse (``InvalidInput``, naming the limit) a text whose planning or evaluation Neo4j
    could not stop in time. Runs before Neo4j sees the text."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"query: longer than {MAX_QUERY_CHARS} characters")
    toks = tokens(query)
    rels = clauses = 0
    # Open brackets: whether each opens a list iteration, and whether its body (after ``|`` or
    # WHERE, evaluated once per element) has begun. Only an iteration inside another's body
    # multiplies; one in its source (``x IN reduce(...)``) runs once.
    stack: list[list[bool]] = []
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        after = toks[i + 2] if i + 2 < len(toks) else None
        if t.kind == "name":
            word = t.upper
            after_string_op = prev is not None and prev.upper in ("STARTS", "ENDS")
            if word in _CLAUSES and not (word == "WITH" and after_string_op):
                clauses += 1
            if word == "RANGE" and nxt and nxt.text == "(":
                _screen_range(toks, i + 1, params)
        if t.text in ("-", "--", "->", "-->", "<-", "<--") and prev and prev.text == ")":
            rels += 1
        if t.text in "([{" and t.kind == "op":
            iteration: str | None = None
            if (
                t.text == "["
                and nxt is not None
                and nxt.kind == "name"
                and after is not None
                and after.upper == "IN"
            ):
                iteration = ""
            elif t.text == "(" and prev is not None and prev.kind == "name":
                word = prev.upper
                if word == "REDUCE" and nxt is not None and nxt.kind == "name":
                    iteration = nxt.text
                elif word in _QUANTIFIERS and after is not None and after.upper == "IN":
                    iteration = ""
            if iteration is not None:
                if any(it and body for it, body in stack) and not _bounded_source(toks, i):
                    raise InvalidInput(
                        f"query: a list iteration inside another (at character {t.pos}) over "
                        "anything but labels(), keys(), nodes(), relationships() or a stored "
                        "property is not served: Neo4j cannot stop it once it runs; UNWIND one "
                        "of the lists instead"
                    )
                if iteration:
                    _screen_reduce(toks, i, iteration)
            stack.append([iteration is not None, False])
        elif t.text in ")]}" and t.kind == "op" and stack:
            stack.pop()
        elif stack and stack[-1][0] and (t.text == "|" or t.upper == "WHERE"):
            stack[-1][1] = True
    if rels > MAX_RELATIONSHIP_PATTERNS:
        raise InvalidInput(
            f"query: {rels} relationship patterns; at most {MAX_RELATIONSHIP_PATTERNS} are "
            "served (planning time grows steeply with them and Neo4j cannot stop it)"
        )
    if clauses > MAX_CLAUSES:
        raise InvalidInput(f"query: {clauses} clauses; at most {MAX_CLAUSES} are served")


def _screen_range(toks: list[Token], open_at: int, params: Mapping[str, Any]) -> None:
    args, _ = _call_args(toks, open_at)
    values = [_int_arg(a, params) for a in args]
    where = f"query: range() at character {toks[open_at].pos}"
    if len(args) not in (2, 3) or any(v is None for v in values):
        raise InvalidInput(
            f"{where}: its bounds must be integer literals or integer parameters (Neo4j cannot "
            f"stop a loop over a computed range); at most {MAX_RANGE:,} values"
        )
    start, end = values[0] or 0, values[1] or 0
    step = values[2] if len(values) == 3 else 1
    if step == 0:
        return  # Neo4j refuses a zero step itself
    assert step is not None
    count = max(0, (end - start) // step + 1)
    if count > MAX_RANGE:
        raise InvalidInput(f"{where}: {count:,} values; at most {MAX_RANGE:,} are served")


# Sources of a nested iteration that are as small as the graph's own data.
_BOUNDED_FUNCTIONS = frozenset({"LABELS", "KEYS", "NODES", "RELATIONSHIPS"})
_ITERATION_END = frozenset({"|", "WHERE", "]", ")"})


def _bounded_source(toks: list[Token], open_at: int) -> bool:
    """Whether the iteration opened at ``open_at`` runs over ``labels(x)``, ``keys(x)``,
    ``nodes(p)``, ``relationships(p)`` or a stored property (``t.platforms``): lists the graph's
    data bounds, unlike a computed or collected one."""
    depth, i = 0, open_at
    while i < len(toks):  # the iteration's own IN, outside nested brackets
        t = toks[i]
        if t.text in "([{" and t.kind == "op":
            depth += 1
        elif t.text in ")]}" and t.kind == "op":
            depth -= 1
            if depth == 0:
                return False
        elif depth == 1 and t.kind == "name" and t.upper == "IN":
            break
        i += 1
    source: list[Token] = []
    depth = 0
    for t in toks[i + 1 :]:
        if depth == 0 and (t.upper in _ITERATION_END if t.kind == "name" else t.text in
                           _ITERATION_END):  # fmt: skip
            break
        if t.text in "([{" and t.kind == "op":
            depth += 1
        elif t.text in ")]}" and t.kind == "op":
            depth -= 1
        source.append(t)
    words = [t.text for t in source]
    if len(source) == 4 and source[0].upper in _BOUNDED_FUNCTIONS:
        return words[1] == "(" and words[3] == ")" and source[2].kind == "name"
    return (
        len(source) == 3
        and source[0].kind == "name"
        and words[1] == "."
        and (source[2].kind == "name")
    )


_CASE_SPLIT = frozenset({"CASE", "WHEN", "THEN", "ELSE", "END"})


def _screen_reduce(toks: list[Token], open_at: int, accumulator: str) -> None:
    """A step whose value holds the accumulator twice (``s + s``, ``[l, l]``) doubles it on
    every element. Uses after ``IN`` (a membership test) do not grow it, and the branches of a
    CASE are alternatives, so each is counted on its own."""
    args, _ = _call_args(toks, open_at)
    body = [t for a in args for t in a]
    bar = next((k for k, t in enumerate(body) if t.text == "|"), None)
    if bar is None:
        return
    uses, worst = 0, 0
    prev: Token | None = None
    for t in body[bar + 1 :]:
        if t.kind == "name" and t.upper in _CASE_SPLIT:
            uses = 0
        elif t.kind == "name" and t.text == accumulator and not (prev and prev.upper == "IN"):
            uses += 1
            worst = max(worst, uses)
        prev = t
    if worst > 1:
        raise InvalidInput(
            f"query: reduce() at character {toks[open_at].pos} puts its accumulator "
            f"{accumulator!r} {worst} times into one step's value (it can grow exponentially); "
            "not served"
        )


# ---------------------------------------------------------------- the plan screen


# Procedures a read-only caller may CALL: the graph's own metadata and full-text search.
ALLOWED_PROCEDURES = frozenset(
    {
        "db.labels",
        "db.relationshipTypes",
        "db.propertyKeys",
        "db.schema.visualization",
        "db.schema.nodeTypeProperties",
        "db.schema.relTypeProperties",
        "db.index.fulltext.queryNodes",
        "db.index.fulltext.queryRelationships",
        "db.index.fulltext.listAvailableAnalyzers",
    }
)
# SHOW commands that only describe this database's schema and code.
ALLOWED_SHOW = frozenset({"ShowIndexes", "ShowConstraints", "ShowProcedures", "ShowFunctions"})
# Operators Neo4j lets run in a READ transaction that still read or change what they should not:
# files and URLs (LOAD CSV), other sessions' queries (SHOW/TERMINATE TRANSACTIONS), settings,
# and CALL {...} IN TRANSACTIONS (which commits on its own).
DENIED_OPERATORS = {
    "LoadCSV": "LOAD CSV reads files and URLs on the database server",
    "TerminateTransactions": "TERMINATE TRANSACTIONS stops other sessions' work",
    "TransactionApply": "CALL { ... } IN TRANSACTIONS commits on its own",
    "TransactionForeach": "CALL { ... } IN TRANSACTIONS commits on its own",
    "AdministrationCommand": "administration commands are not for this endpoint",
}


def screen_plan(summary: Any, database: str) -> None:
    """Refuse (``Forbidden``) a planned query that is not read-only in Neo4j's own terms, or
    that uses an operator or procedure outside the allow-lists above."""
    query_type = getattr(summary, "query_type", None)
    if query_type != "r":
        kind = {
            "rw": "reads and writes",
            "w": "writes",
            "s": "is a schema or administration command",
        }
        what = kind.get(query_type or "", "does not only read")
        raise Forbidden(
            f"query: Neo4j plans this query as one that {what} — this endpoint runs read-only "
            "queries"
        )
    for op, details, db in _plan_operators(getattr(summary, "plan", None)):
        if db and db != database:
            raise Forbidden(f"query: it runs against database {db!r}; only {database!r} is served")
        if op in DENIED_OPERATORS:
            raise Forbidden(f"query: {DENIED_OPERATORS[op]}")
        if op.startswith("Show") and op not in ALLOWED_SHOW:
            raise Forbidden(f"query: {op} is not served here (allowed: SHOW INDEXES, CONSTRAINTS, "
                            "PROCEDURES, FUNCTIONS)")  # fmt: skip
        if op.startswith(("Terminate", "Administration", "Transaction")):
            raise Forbidden(f"query: the {op} operator is not served here")
        if "ProcedureCall" in op:
            name = (details or "").split("(", 1)[0].strip()
            if name not in ALLOWED_PROCEDURES:
                raise Forbidden(
                    f"query: CALL {name or 'procedure'} is not allowed; allowed procedures: "
                    + ", ".join(sorted(ALLOWED_PROCEDURES))
                )


def _plan_operators(plan: Any) -> Iterator[tuple[str, str | None, str | None]]:
    """(operator, details, database) for every operator of an EXPLAIN plan."""
    stack = [plan] if plan else []
    while stack:
        node = stack.pop()
        raw = str(node.get("operatorType") or "")
        op, _, db = raw.partition("@")
        details = (node.get("args") or {}).get("Details")
        yield op, details if isinstance(details, str) else None, db or None
        stack.extend(node.get("children") or [])


# ---------------------------------------------------------------- parameters and errors


_INT64 = (-(2**63), 2**63 - 1)


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as Neo4j takes them: names are identifiers, integers fit in 64 bits."""
    if not isinstance(params, Mapping):
        raise InvalidInput("params: must be a JSON object")
    for name in params:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidInput(f"params: {name!r} is not a parameter name (letters, digits, _)")

    stack: list[tuple[Any, str, int]] = [(v, f"params.{k}", 1) for k, v in params.items()]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_PARAM_DEPTH:
            raise InvalidInput(f"{where}: nested deeper than {MAX_PARAM_DEPTH} levels")
        if isinstance(value, bool) or value is None or isinstance(value, str | float):
            continue
        if isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise InvalidInput(f"{where}: integer {value} does not fit in 64 bits")
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, Mapping):
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in value.items())
        else:
            raise InvalidInput(f"{where}: not a JSON value")
    return dict(params)


# Java class names in Neo4j's messages ("Caused by: java.lang.IllegalArgumentException: ..."):
# the server's internals, not for callers.
_JAVA_NAME = re.compile(r"(?:Caused by:\s*)?\b(?:[a-z]\w*\.)+[A-Z]\w*\b:?\s*|\b\w+Exception\b:?\s*")


def public_message(message: str) -> str:
    """Neo4j's first message line, without Java class names."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    return _JAVA_NAME.sub("", first).strip() or "Neo4j refused it"


@contextmanager
def user_cypher_errors() -> Iterator[None]:
    """A caller's Cypher that Neo4j rejects is the caller's error (4xx), named as Neo4j says —
    without the server's internals (Java class names)."""
    try:
        yield
    except AuthError:
        raise  # the API's own credentials: Neo4j unavailable (503), not the caller's fault
    except (ClientError, DatabaseError, TransientError) as exc:
        code = exc.code or ""
        if code.startswith(TIMEOUT_CODES):
            raise
        if "OutOfMemory" in code or "MemoryPoolOutOfMemory" in code:
            raise AnswerTooLarge(
                "query: Neo4j ran out of the memory a transaction may use computing this "
                "answer; ask for less (filters, a smaller limit, fewer collected values)"
            ) from exc
        if isinstance(exc, TransientError):
            raise
        message = public_message(exc.message or code)
        if code == "Neo.ClientError.Statement.AccessMode":
            raise Forbidden(
                f"query: Neo4j refused a write in a read-only transaction ({message})"
            ) from exc
        if code.startswith("Neo.ClientError.Security."):
            raise Forbidden(f"query: {message}") from exc
        if code.startswith("Neo.DatabaseError."):
            raise InvalidInput(f"query: Neo4j could not run it [{code}]") from exc
        raise InvalidInput(f"query: {message} [{code}]") from exc


# ---------------------------------------------------------------- values


def to_json(value: Any, depth: int = 0) -> Any:
    """A Neo4j value as JSON: nodes, relationships and paths as objects, temporal values as
    ISO 8601 strings, points as {srid, x, y[, z]}, bytes as base64, non-finite floats as text."""
    from neo4j.graph import Node, Path, Relationship

    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > MAX_VALUE_DEPTH:
        raise InvalidInput(f"answer: a value nested deeper than {MAX_VALUE_DEPTH} levels")
    d = depth + 1
    if isinstance(value, Node):
        return {
            "element_id": value.element_id,
            "labels": sorted(value.labels),
            "properties": {k: to_json(v, d) for k, v in value.items()},
        }
    if isinstance(value, Relationship):
        return {
            "element_id": value.element_id,
            "type": value.type,
            "start": value.start_node.element_id if value.start_node else None,
            "end": value.end_node.element_id if value.end_node else None,
            "properties": {k: to_json(v, d) for k, v in value.items()},
        }
    if isinstance(value, Path):
        return {
            "nodes": [to_json(n, d) for n in value.nodes],
            "relationships": [to_json(r, d) for r in value.relationships],
        }
    if hasattr(value, "srid"):  # a spatial Point (a tuple of coordinates)
        out = {"srid": value.srid, "x": value[0], "y": value[1]}
        if len(value) > 2:
            out["z"] = value[2]
        return out
    if isinstance(value, list | tuple):
        return [to_json(v, d) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v, d) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return str(value)


# ---------------------------------------------------------------- running it


@dataclass
class CypherAnswer:
    """The answer, already encoded: ``body`` is the JSON document the API sends."""

    columns: list[str]
    row_count: int
    truncated: bool
    body: bytes


async def run_read_only(
    agraph: AsyncGraph,
    query: str,
    params: Mapping[str, Any] | None = None,
    *,
    max_rows: int,
    timeout: float,
    max_bytes: int,
    owner: str = "local",
    request_id: str = "",
    screen: bool = True,
) -> CypherAnswer:
    """Run a caller's Cypher in a READ transaction: at most ``max_rows`` rows and ``max_bytes``
    bytes of JSON, ``timeout`` s as its transaction timeout. ``owner`` and ``request_id`` go
    into the transaction's metadata (``endpoint_transactions`` counts them). ``screen=False``
    skips the text and plan screens (tests use it to show READ access mode holds alone)."""
    params = check_params(params or {})
    if screen:
        screen_text(query, params)
    t0 = time.perf_counter()
    meta = {"app": APP, "owner": owner, "request": request_id}
    limit_mb = f"{max_bytes / 1024 / 1024:g} MB"
    with neo4j_errors(), user_cypher_errors():
        async with agraph.driver.session(
            database=agraph.database, default_access_mode=neo4j.READ_ACCESS, fetch_size=FETCH_SIZE
        ) as session:
            if screen:
                explain = neo4j.Query("EXPLAIN " + query, timeout=timeout, metadata=meta)  # type: ignore[arg-type]
                plan = await session.run(explain, params)
                screen_plan(await plan.consume(), agraph.database)
            tx = await session.begin_transaction(timeout=timeout, metadata=meta)
            try:
                result = await tx.run(query, params)  # type: ignore[arg-type]
                keys = list(result.keys())
                head = json.dumps(keys).encode()
                rows: list[bytes] = []
                size = len(head) + 100
                truncated = False
                async for record in result:
                    if len(rows) == max_rows:
                        truncated = True
                        break
                    row = json.dumps([to_json(v) for v in record.values()]).encode()
                    size += len(row) + 1
                    if size > max_bytes:
                        raise AnswerTooLarge(
                            f"answer: more than {limit_mb} of JSON after {len(rows)} rows "
                            "(TTPGRAPH_CYPHER_MAX_MB); return fewer or smaller values"
                        )
                    rows.append(row)
            finally:
                # A read: rolling back ends it at once, without streaming the rest. (After a
                # cancellation the driver has closed the connection, and the transaction.)
                if not tx.closed():
                    with contextlib.suppress(
                        neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError
                    ):
                        await tx.rollback()
    elapsed = round((time.perf_counter() - t0) * 1000, 2)
    body = b"".join(
        [
            b'{"columns":',
            head,
            b',"rows":[',
            b",".join(rows),
            b'],"row_count":%d,"truncated":%s,"limit":%d,"elapsed_ms":%s}'
            % (len(rows), b"true" if truncated else b"false", max_rows, str(elapsed).encode()),
        ]
    )
    return CypherAnswer(columns=keys, row_count=len(rows), truncated=truncated, body=body)


async def endpoint_transactions(agraph: AsyncGraph) -> list[tuple[str, str]]:
    """(owner, request id) of every transaction of this endpoint Neo4j still holds — across
    every worker and replica, including those Neo4j was told to stop but still runs."""
    rows = await agraph.read(Q.cypher_endpoint_transactions, app=APP)
    return [(str(r["owner"]), str(r["request"])) for r in rows]


async def terminate_request(agraph: AsyncGraph, request_id: str) -> int:
    """Ask Neo4j to terminate the transactions of one request (after its deadline)."""
    rows = await agraph.read(Q.cypher_endpoint_transactions, app=APP)
    ids = [r["transaction_id"] for r in rows if r["request"] == request_id]
    if ids:
        await agraph.read(Q.terminate_transactions, ids=ids)
    return len(ids)
