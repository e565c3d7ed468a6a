"""What is loaded: releases and counts."""

from __future__ import annotations

from .catalog import Q
from .graph import Graph
from .models import GraphStatus, LabelCount, Release

STATUS_LABELS = [
    "Tactic", "Technique", "Group", "Software", "Campaign", "Mitigation", "DataSource",
    "DataComponent", "DetectionStrategy", "Analytic", "LogSource", "Asset",
]  # fmt: skip


def releases(graph: Graph, *, limit: int = 100) -> list[Release]:
    return [Release(**r) for r in graph.read(Q.releases, limit=limit)]


def graph_status(graph: Graph) -> GraphStatus:
    labels = [LabelCount(**r) for r in graph.read(Q.graph_counts, labels=STATUS_LABELS)]
    return GraphStatus(releases=releases(graph), labels=labels)
