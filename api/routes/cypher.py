"""POST /api/v1/cypher: read-only Cypher for power users, with parameters and row, size, time and
concurrency limits. The query runs in the worker's Cypher child process (api.cypher_runner)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from queries.errors import InvalidInput
from queries.user_cypher import MAX_QUERY_CHARS, check_params, screen_text

from ..auth import READ_ONLY
from ..problems import PROBLEM_RESPONSES, problem_response

router = APIRouter(prefix="/api/v1", tags=["cypher"])

EXAMPLE: dict[str, Any] = {
    "query": (
        "MATCH (g:Group {attack_id: $group})-[:USES]->(t:Technique) "
        "WHERE NOT t.revoked AND NOT t.deprecated "
        "RETURN t.attack_id AS technique, t.name AS name ORDER BY technique LIMIT $limit"
    ),
    "params": {"group": "G0016", "limit": 10},
}


class CypherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="One read-only Cypher statement. Values go in `params`, as `$name`.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Query parameters (JSON values)"
    )
    limit: int | None = Field(
        None, ge=1, description="Rows to return at most (default and maximum: the server's)"
    )


class CypherResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]] = Field(
        description="Values as JSON: nodes {element_id, labels, properties}, relationships "
        "{element_id, type, start, end, properties}, paths {nodes, relationships}, temporal "
        "values as ISO 8601 strings"
    )
    row_count: int
    truncated: bool = Field(description="True when the query had more rows than `limit`")
    limit: int
    elapsed_ms: float


# The request body: a query and its parameters. A 2 MB parameter returned in 500 rows once grew
# a worker to 2.45 GB; parameters are data for a query, not a way to upload.
MAX_BODY_MB = 1


@router.post(
    "/cypher",
    summary="Run read-only Cypher (parameters only; row, size, time and concurrency limits)",
    openapi_extra={**READ_ONLY, "x-max-body-mb": MAX_BODY_MB},
    response_model=CypherResult,
    responses={
        **PROBLEM_RESPONSES,
        403: problem_response("A write, or a forbidden operation"),
        429: problem_response("Too many Cypher queries at once for this key, or in all"),
    },
)
async def run_cypher(body: CypherRequest, request: Request) -> Response:
    """Neo4j plans the query first and it runs only if Neo4j calls it read-only and it uses no
    operator or procedure outside the allow-lists (no LOAD CSV, no dbms.*, no SHOW/TERMINATE
    TRANSACTIONS, no CALL {...} IN TRANSACTIONS); it then runs in a READ transaction, where Neo4j
    itself refuses writes, with the server's timeout (504 past it). Texts whose planning or
    evaluation Neo4j could not stop are refused first (422, naming the limit); answers past the
    size limit are a 422; past the concurrency limits, a 429 with Retry-After."""
    settings = request.app.state.settings
    max_rows = settings.ttpgraph_cypher_max_rows
    if body.limit is not None and body.limit > max_rows:
        raise InvalidInput(f"limit: at most {max_rows} rows (TTPGRAPH_CYPHER_MAX_ROWS)")
    # Cheap checks here, before the child is asked (the child checks again).
    params = check_params(body.params)
    screen_text(body.query, params)
    owner = getattr(request.state, "api_key", None) or "local"
    answer = await request.app.state.cypher_runner.run(
        query=body.query,
        params=params,
        max_rows=body.limit or max_rows,
        owner=owner,
        arrived=getattr(request.state, "arrived", None),
    )
    return Response(answer, media_type="application/json")
