"""The organisation's own intelligence into the graph, kept apart from MITRE's objects.

Three ways in, one way down:

- STIX 2.1 bundles as OpenCTI, ATT&CK Workbench and MISP (misp-stix) export them: intrusion
  sets and threat actors, campaigns, malware and tools, reports and groupings, indicators (with
  their patterns), observables (SCOs, and observed-data flattened to them), sightings and
  incidents, with ``uses`` / ``indicates`` / ``attributed-to`` / ``based-on`` / ... relationships;
  every object is validated with ``stix2`` (``allow_custom=True``: OpenCTI's and MISP's custom
  properties and extensions are fine), an invalid one refuses the whole import with one line
  naming it;
- MISP event JSON: the event becomes a ``Report``, attributes become IOCs (``Indicator`` when
  ``to_ids``, else ``Observable``), ATT&CK galaxy tags (``misp-galaxy:mitre-attack-pattern="... -
  T1059.001"``) link to ATT&CK's techniques, threat-actor galaxy clusters become the
  organisation's clusters;
- a quick incident form: a name, observed technique ids, optional IOCs.

Everything lands as the organisation's own nodes: label ``OrgObject`` plus ``OrgCluster``,
``OrgCampaign``, ``OrgSoftware``, ``Report``, ``Indicator``, ``Observable``, ``Sighting`` or
``Incident``; ``org: true``, ``source`` (the import's label) and a unique ``key`` (source + STIX
id). Relationships carry ``org: true`` and ``source`` too. They go between those nodes or *from*
them *to* ATT&CK's ``Technique``, ``Software``, ``Group`` and ``Campaign`` nodes (matched by STIX
id or ATT&CK id); nothing here ever sets a property or label on, or adds a relationship from,
an ``AttackObject``. An import is staged in batches beside what the same source imported before
and switched in with one small transaction (:mod:`loader.intel.store`: readers see the previous
import or the new one, never half), keeping the analyst's ``SAME_AS`` links; a bundle over
:data:`~loader.intel.imports.STREAM_ABOVE` bytes is read as a stream, so memory does not grow
with it.

The modules: :mod:`~loader.intel.imports` (the entry points), :mod:`~loader.intel.stix` and
:mod:`~loader.intel.bundle` (STIX bundles), :mod:`~loader.intel.misp` (MISP event JSON),
:mod:`~loader.intel.incident` (the quick form), :mod:`~loader.intel.read` (reading files,
streaming), :mod:`~loader.intel.attack` (ATT&CK references), :mod:`~loader.intel.iocs` (IOC
values and patterns), :mod:`~loader.intel.rows` (rows and batched writes),
:mod:`~loader.intel.write` (the schema, staging, deleting, ``SAME_AS`` links),
:mod:`~loader.intel.store` (staged imports switched in), :mod:`~loader.intel.fastcheck` (the
fast acceptance of plain STIX objects) and :mod:`~loader.intel.common` (allow-lists, helpers).
Settings read when used (``rows.BATCH``, ``imports.STREAM_ABOVE``) are not re-exported here:
change them on their module.
"""

from __future__ import annotations

from .attack import AttackIndex, attack_ids_of
from .imports import import_intel_bytes, import_intel_file
from .incident import create_incident, incident_rows
from .iocs import guess_ioc, observable_values, pattern_problem, pattern_values
from .misp import misp_rows
from .read import detect_format, read_json
from .rows import Endpoint, IntelRows
from .stix import stix_import
from .write import delete_source, ensure_intel_schema, link_same_as, write_intel

__all__ = [
    "AttackIndex",
    "Endpoint",
    "IntelRows",
    "attack_ids_of",
    "create_incident",
    "delete_source",
    "detect_format",
    "ensure_intel_schema",
    "guess_ioc",
    "import_intel_bytes",
    "import_intel_file",
    "incident_rows",
    "link_same_as",
    "misp_rows",
    "observable_values",
    "pattern_problem",
    "pattern_values",
    "read_json",
    "stix_import",
    "write_intel",
]
