"""The enumerations the front doors name before any service runs (command-line options, query
parameters): kept apart from the services so ``ttpgraph --help`` imports no driver or models.
Each is also importable from the service module that uses it."""

from __future__ import annotations

from enum import StrEnum


class PathKind(StrEnum):
    """How we know a group uses a technique (queries.actors)."""

    direct = "direct"
    software = "software"
    campaign = "campaign"


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
