"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served with their
scripts and styles from the ``fastapi-offline`` package rather than a CDN, so they render on a
machine without internet.

Swagger UI (Apache-2.0) and ReDoc (MIT) come as the built files ``fastapi-offline`` (MIT)
ships; only those files are served, by name (no path from the URL reaches disk).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from queries.errors import NotFound

from ..paths import ASSETS_PREFIX, DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL

_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}

# The pages load nothing from elsewhere: ReDoc's "powered by" logo (from its CDN) is refused by
# the browser instead of leaving the machine.
_CSP = {"Content-Security-Policy": "img-src 'self' data: blob:"}

router = APIRouter(include_in_schema=False)


def asset_dir() -> Path:
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


def _assets() -> dict[str, Path]:
    folder = asset_dir()
    return {name: folder / name for name in _TYPES if (folder / name).is_file()}


_ASSETS = _assets()


def _openapi_url(request: Request) -> str:
    return request.scope.get("root_path", "") + (request.app.openapi_url or "/openapi.json")


@router.get(DOCS_URL)
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "") + ASSETS_PREFIX
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=request.app.title + " - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=root + "swagger-ui-bundle.js",
        swagger_css_url=root + "swagger-ui.css",
        swagger_favicon_url=root + "favicon.png",
    )
    page.headers.update(_CSP)
    return page


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "") + ASSETS_PREFIX
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=request.app.title + " - ReDoc",
        redoc_js_url=root + "redoc.standalone.js",
        redoc_favicon_url=root + "favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(_CSP)
    return page


@router.get(ASSETS_PREFIX + "{name}")
def asset(name: str) -> FileResponse:
    path = _ASSETS.get(name)
    if path is None:
        raise NotFound(f"no file {name!r} in the documentation's assets")
    return FileResponse(path, media_type=_TYPES[name], headers={"Cache-Control": "max-age=86400"})
