"""The organisation's own intelligence, answered from the graph.

- **Who fits this incident?** ATT&CK groups and the organisation's clusters ranked by how well
  their techniques match the observed ones: the cosine similarity of technique vectors weighted
  by rarity (IDF: a technique few actors use says more than one everybody uses), with the shared
  and missing techniques and the evidence for each shared one.
- **The recall check**: hide a group, give a random (seeded) part of its techniques, see where
  it ranks.
- **What does this IOC tell me?** From indicators and observables to the techniques, software,
  campaigns, clusters and groups they are linked to, as graph paths.
- **What should we expect next?** For a matched actor, its techniques not observed yet, in
  matrix (tactic) order, with whether the organisation's detection inventories cover them.

Imports live in :mod:`loader.intel`; this module reads only.

The modules: :mod:`~queries.intel.attribution` (who fits, the recall check),
:mod:`~queries.intel.iocs` (what an IOC tells), :mod:`~queries.intel.expect` (what comes next),
:mod:`~queries.intel.resolution` (techniques, clusters, actors and the observed set resolved),
:mod:`~queries.intel.listings` (sources, incidents), :mod:`~queries.intel.models` (the answers)
and :mod:`~queries.intel.common` (what they share).
"""

from __future__ import annotations

from .attribution import (
    METHOD,
    RECALL_GROUPS,
    ActorPool,
    actor_pool,
    attribute,
    attribution_recall,
)
from .common import CLUSTER_ID, MAX_OBSERVED, cluster_technique_sets, read_quietly
from .expect import expect_next
from .iocs import ioc_lookup
from .listings import list_incidents, list_sources
from .models import (
    ActorKind,
    ActorMatch,
    Attribution,
    Expectation,
    ExpectedTechnique,
    ImportResult,
    IncidentSummary,
    IntelSource,
    IocAnswer,
    IocMatch,
    IocPath,
    LinkedObject,
    ObservedTechnique,
    PathNode,
    PathRelationship,
    RecallGroup,
    RecallReport,
    SharedTechnique,
    TacticBucket,
    TechniqueEvidence,
)
from .resolution import (
    observed_techniques,
    resolve_actor,
    resolve_cluster,
    resolve_cluster_keys,
    resolve_techniques,
    split_ids,
)

__all__ = [
    "CLUSTER_ID",
    "MAX_OBSERVED",
    "METHOD",
    "RECALL_GROUPS",
    "ActorKind",
    "ActorMatch",
    "ActorPool",
    "Attribution",
    "ExpectedTechnique",
    "Expectation",
    "ImportResult",
    "IncidentSummary",
    "IntelSource",
    "IocAnswer",
    "IocMatch",
    "IocPath",
    "LinkedObject",
    "ObservedTechnique",
    "PathNode",
    "PathRelationship",
    "RecallGroup",
    "RecallReport",
    "SharedTechnique",
    "TacticBucket",
    "TechniqueEvidence",
    "actor_pool",
    "attribute",
    "attribution_recall",
    "cluster_technique_sets",
    "expect_next",
    "ioc_lookup",
    "list_incidents",
    "list_sources",
    "observed_techniques",
    "read_quietly",
    "resolve_actor",
    "resolve_cluster",
    "resolve_cluster_keys",
    "resolve_techniques",
    "split_ids",
]
