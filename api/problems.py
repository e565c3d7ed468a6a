"""RFC 9457 problem+json: one model and one place that maps errors to responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from queries.errors import TtpgraphError

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    type: str = Field("about:blank", description="URI reference that identifies the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    suggestions: list[str] | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="Validation errors, each naming the field ('loc')"
    )


def problem(status: int, title: str, detail: str | None, request: Request, **extra: Any):
    body = Problem(
        type=extra.pop("type", "about:blank"),
        title=title,
        status=status,
        detail=detail,
        instance=str(request.url.path),
        **extra,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM: {}}, "description": desc}
    for code, desc in {
        404: "Not found (with close matches)",
        422: "Invalid input (the field is named)",
        503: "Graph database unavailable",
    }.items()
}


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(TtpgraphError)
    async def _domain(request: Request, exc: TtpgraphError):
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            request,
            type=f"https://ttpgraph.dev/problems/{exc.__class__.__name__.lower()}",
            suggestions=exc.suggestions or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        field = ".".join(str(x) for x in first["loc"])
        return problem(422, "Invalid input", f"{field}: {first['msg']}", request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail), request)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
