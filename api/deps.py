"""Dependencies declared once: the process's Graph."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from queries.graph import Graph


def get_graph(request: Request) -> Graph:
    return request.app.state.graph


GraphDep = Annotated[Graph, Depends(get_graph)]
