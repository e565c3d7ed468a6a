"""The enumerations the front doors name before any service runs (command-line options, query
parameters): kept apart from the services so ``ttpgraph --help`` imports no driver or models.
Each is also importable from the service module that uses it."""

from __future__ import annotations

from enum import StrEnum


class PathKind(StrEnum):
    """How an actor is tied to a technique, defined once in the ``actor_techniques`` block of the
    Cypher catalog: ``direct`` (it USES the technique), ``software`` (software it uses, or that a
    campaign attributed to it uses, uses the technique), ``campaign`` (a campaign attributed to
    it uses the technique)."""

    direct = "direct"
    software = "software"
    campaign = "campaign"


def path_kinds(include_software: bool) -> list[str]:
    """The path kinds of a technique set: direct and campaign, and software when asked."""
    kinds = [PathKind.direct.value, PathKind.campaign.value]
    return kinds + [PathKind.software.value] if include_software else kinds


class TelemetryLevel(StrEnum):
    """What telemetry is ranked by (queries.coverage)."""

    log_source = "log_source"
    data_component = "data_component"


class Metric(StrEnum):
    """What links two groups in the actor network (queries.overlap)."""

    jaccard = "jaccard"
    shared = "shared"


# The actor network's defaults (queries.overlap): an edge needs this much overlap per metric, and
# Louvain's seed (same seed, same communities).
DEFAULT_THRESHOLDS = {Metric.jaccard.value: 0.2, Metric.shared.value: 20.0}
DEFAULT_SEED = 42
