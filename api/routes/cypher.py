"""POST /api/v1/cypher: read-only Cypher for power users, with parameters, row and time limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from queries.errors import InvalidInput

from ..auth import READ_ONLY
from ..deps import AsyncGraphDep
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
        max_length=20_000,
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


@router.post(
    "/cypher",
    summary="Run read-only Cypher (parameters only; row and time limits)",
    openapi_extra=READ_ONLY,
    responses={**PROBLEM_RESPONSES, 403: problem_response("A write, or a forbidden operation")},
)
async def run_cypher(body: CypherRequest, agraph: AsyncGraphDep, request: Request) -> CypherResult:
    """Neo4j plans the query first and it runs only if Neo4j calls it read-only and it uses no
    operator or procedure outside the allow-lists (no LOAD CSV, no dbms.*, no SHOW/TERMINATE
    TRANSACTIONS, no CALL {...} IN TRANSACTIONS); it then runs in a READ transaction, where Neo4j
    itself refuses writes, with the server's timeout (504 past it)."""
    settings = request.app.state.settings
    max_rows = settings.ttpgraph_cypher_max_rows
    if body.limit is not None and body.limit > max_rows:
        raise InvalidInput(f"limit: at most {max_rows} rows (TTPGRAPH_CYPHER_MAX_ROWS)")
    limit = body.limit or max_rows
    result = await agraph.run_read_only(
        body.query, body.params, max_rows=limit, timeout=settings.ttpgraph_cypher_timeout
    )
    return CypherResult(
        columns=result.columns,
        rows=result.rows,
        row_count=len(result.rows),
        truncated=result.truncated,
        limit=limit,
        elapsed_ms=result.elapsed_ms,
    )
