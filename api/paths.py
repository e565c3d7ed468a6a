"""Where the documentation pages live: shared by their routes and the key check (which lets
them through), without importing FastAPI."""

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = DOCS_URL + "/oauth2-redirect"
ASSETS_PREFIX = DOCS_URL + "/assets/"
