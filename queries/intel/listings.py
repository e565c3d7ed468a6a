"""The imported sources and the incidents and reports, newest first."""

from __future__ import annotations

from ..catalog import Q
from ..graph import Graph
from .common import read_quietly
from .models import IncidentSummary, IntelSource


def list_sources(graph: Graph, *, limit: int = 1000) -> list[IntelSource]:
    """The imported sources (exports, MISP events, incidents), newest first."""
    import json

    out = []
    for r in read_quietly(graph, Q.intel_sources, limit=limit):
        r["counts"] = json.loads(r["counts"]) if isinstance(r["counts"], str) else {}
        out.append(IntelSource(**r))
    return out


def list_incidents(graph: Graph, *, limit: int = 1000) -> list[IncidentSummary]:
    """Incidents and reports (MISP events, STIX reports), newest first."""
    return [IncidentSummary(**r) for r in read_quietly(graph, Q.intel_incidents, limit=limit)]
