"""Detection-rule inventory parsers: an organisation's rules in, ATT&CK technique ids out.

Pure functions, no database: each ``parse_*`` reads files from disk and returns a
:class:`ParsedInventory` (rules with normalised technique ids, parse issues, ignored ids, notes).

Formats (keys of :data:`PARSERS`):

- ``sigma``: SigmaHQ YAML rules, a folder (recursive) or a single file.
- ``elastic``: elastic/detection-rules TOML (``[rule]``) and hunting TOML (``[hunt]``).
- ``splunk``: Splunk Security Content detection YAML (``tags.mitre_attack_id`` or, in the newer
  schema, a top-level ``mitre_attack_id``).
- ``splunk-es``: a Splunk ES saved-search export (``| rest /services/saved/searches``), CSV or JSON.
- ``sentinel``: Microsoft Sentinel analytic rules, YAML (``relevantTechniques``) or an ARM JSON
  export (``properties.techniques`` / ``subTechniques``).
- ``csv``: a plain CSV/TSV with a technique column, or a plain list with one id per line.
- ``layer``: an ATT&CK Navigator layer (4.x).

Robustness contract: a file that cannot be read or parsed (bad syntax, not UTF-8, not a mapping,
empty, over :data:`MAX_FILE_BYTES`, a symlink leading out of the imported root, not a regular
file) becomes a :class:`ParseIssue` with a one-line reason; it never raises. Only a path that does
not exist or is the wrong kind raises :class:`queries.errors.InvalidInput`.

Status normalisation (``Rule.status``, see :data:`STATUSES`):

============== ===========================================================================
active          Sigma ``stable``; Elastic ``production``; Splunk ``production``; Sentinel
                ``Available``/``Installed`` or ``enabled: true``; Splunk ES enabled search;
                CSV ``active``/``enabled``/``production``/``stable``/...; CSV without a status
                column, plain lists and Navigator layers (their entries are claimed coverage)
test            Sigma ``test``; Splunk ``validation``; CSV ``test``/``testing``
experimental    Sigma/Splunk ``experimental``; Elastic ``development``; CSV ``beta``/...
deprecated      a ``deprecated`` status/maturity; Sigma ``deprecated/`` folder; Elastic
                ``rules/_deprecated/``; Splunk ``deprecated/`` or ``removed/`` folder and
                ``removed``; Sentinel names starting ``[Deprecated]``
unsupported     Sigma ``unsupported`` status or ``unsupported/`` folder; Sentinel ``NotAvailable``
building_block  Elastic ``building_block_type`` set or ``rules_building_block/``
disabled        Splunk ES ``disabled=1``; Sentinel/CSV ``enabled: false``; CSV ``disabled``
hunting         Elastic hunting TOML (``[hunt]``)
unknown         no status given, or a value not in the tables above (``raw_status`` keeps it)
============== ===========================================================================

Precedence where several apply: deprecated (folder or value) > unsupported folder >
building_block > disabled > the status field.

Modules: :mod:`.model` (rules, statuses, a parsed inventory and its stream), :mod:`.values` and
:mod:`.techniques` (scalars, technique ids), :mod:`.files` and :mod:`.yaml_docs` (reading), one
module a format (:mod:`.sigma`, :mod:`.elastic`, :mod:`.splunk`, :mod:`.sentinel`,
:mod:`.csv_list`, :mod:`.layer`) and :mod:`.registry` (format -> parser). This package imports
no database code: writing an inventory into the graph is :mod:`loader.inventory.importer`
(resolution and coverage: :mod:`.planner`; crosswalks: :mod:`.crosswalk`), imported by its
callers directly.
"""

from __future__ import annotations

from .csv_list import MAX_CSV_BYTES, parse_csv, stream_csv
from .elastic import parse_elastic
from .files import MAX_FILE_BYTES
from .layer import parse_layer
from .model import (
    ACTIVE,
    BUILDING_BLOCK,
    DEPRECATED,
    DISABLED,
    EXPERIMENTAL,
    HUNTING,
    PARENT_MODES,
    STATUSES,
    SUB_MODES,
    TEST,
    UNKNOWN,
    UNSUPPORTED,
    ParsedInventory,
    ParseIssue,
    Rule,
    RuleStream,
    summarize,
)
from .registry import PARSERS, parse_inventory, stream_inventory
from .sentinel import parse_sentinel
from .sigma import parse_sigma
from .splunk import parse_splunk, parse_splunk_es
from .techniques import normalize_technique_id

__all__ = [
    "ACTIVE",
    "BUILDING_BLOCK",
    "DEPRECATED",
    "DISABLED",
    "EXPERIMENTAL",
    "HUNTING",
    "MAX_CSV_BYTES",
    "MAX_FILE_BYTES",
    "PARENT_MODES",
    "PARSERS",
    "STATUSES",
    "SUB_MODES",
    "TEST",
    "UNKNOWN",
    "UNSUPPORTED",
    "ParseIssue",
    "ParsedInventory",
    "Rule",
    "RuleStream",
    "normalize_technique_id",
    "parse_csv",
    "parse_elastic",
    "parse_inventory",
    "parse_layer",
    "parse_sentinel",
    "parse_sigma",
    "parse_splunk",
    "parse_splunk_es",
    "stream_csv",
    "stream_inventory",
    "summarize",
]
