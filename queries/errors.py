"""Domain errors. The API maps them to HTTP statuses in one handler; the CLI to exit code 1."""

from __future__ import annotations


class TtpgraphError(Exception):
    """Base class for every error a user can cause or fix."""

    status = 400
    title = "Bad request"

    def __init__(
        self, detail: str, *, suggestions: list[str] | None = None, private: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.suggestions = suggestions or []
        # What only the operator should see (a server address, a driver message): the CLI
        # prints it, the API logs it and never puts it in a problem body.
        self.private = private


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


class Busy(TtpgraphError):
    """Too many requests of this kind at once; ``retry_after`` seconds is a fair wait."""

    status = 429
    title = "Too many requests"

    def __init__(
        self, detail: str, *, retry_after: int = 1, suggestions: list[str] | None = None
    ) -> None:
        super().__init__(detail, suggestions=suggestions)
        self.retry_after = retry_after


class ImportFailed(TtpgraphError):
    """An import could not be written (the message says why and what to do); the graph
    answers as it did before the import started."""

    status = 500
    title = "Import failed"
