"""Domain errors. The API maps them to HTTP statuses in one handler; the CLI to exit code 1."""

from __future__ import annotations


class TtpgraphError(Exception):
    """Base class for every error a user can cause or fix."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, suggestions: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.suggestions = suggestions or []


class NotFound(TtpgraphError):
    status = 404
    title = "Not found"


class InvalidInput(TtpgraphError):
    status = 422
    title = "Invalid input"


class Conflict(TtpgraphError):
    status = 409
    title = "Conflict"


class Unavailable(TtpgraphError):
    """The graph database cannot be reached."""

    status = 503
    title = "Graph database unavailable"


class ImportFailed(TtpgraphError):
    """An import could not be written (the message says why and what to do); the graph
    answers as it did before the import started."""

    status = 500
    title = "Import failed"
