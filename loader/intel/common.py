"""What an import of the organisation's intelligence is made of: the labels and relationship
types it may write (allow-lists), the STIX types it reads or skips, and the small helpers every
reader of an export uses (text, lists, timestamps, keys, the source label)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from queries.errors import InvalidInput

# uuid5 namespace for ids ttpgraph makes up (MISP attributes without a STIX twin, incidents).
NAMESPACE = uuid.UUID("2c9a6f0e-6c1d-5f55-9a8e-6f1b8a0c7d21")

# STIX type -> the organisation's label. Labels written come only from this allow-list.
ORG_LABELS: dict[str, str] = {
    "intrusion-set": "OrgCluster",
    "threat-actor": "OrgCluster",
    "campaign": "OrgCampaign",
    "malware": "OrgSoftware",
    "tool": "OrgSoftware",
    "report": "Report",
    "grouping": "Report",
    "indicator": "Indicator",
    "sighting": "Sighting",
    "incident": "Incident",
}
OBSERVABLE = "Observable"
ALL_LABELS = (*sorted(set(ORG_LABELS.values())), OBSERVABLE)

# ATT&CK node label an org object of this STIX type may stand for (same STIX id / ATT&CK id).
ATTACK_KIND = {
    "attack-pattern": "Technique",
    "intrusion-set": "Group",
    "malware": "Software",
    "tool": "Software",
    "campaign": "Campaign",
}

# STIX relationship type -> relationship type. Others are counted and skipped.
REL_TYPES: dict[str, str] = {
    "uses": "USES",
    "indicates": "INDICATES",
    "attributed-to": "ATTRIBUTED_TO",
    "based-on": "BASED_ON",
    "related-to": "RELATED_TO",
    "derived-from": "DERIVED_FROM",
    "variant-of": "VARIANT_OF",
    "delivers": "DELIVERS",
    "drops": "DROPS",
    "downloads": "DOWNLOADS",
    "communicates-with": "COMMUNICATES_WITH",
    "duplicate-of": "DUPLICATE_OF",
    "targets": "TARGETS",
}
# Relationship types ttpgraph adds itself.
OWN_REL_TYPES = ("REFERS_TO", "SIGHTING_OF", "OBSERVED", "SAME_AS")
ALL_REL_TYPES = (*sorted(set(REL_TYPES.values())), *OWN_REL_TYPES)

# STIX Cyber-observable types (2.1) and the custom ones OpenCTI exports.
SCO_TYPES = {
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
    "file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process",
    "software", "url", "user-account", "windows-registry-key", "x509-certificate",
    "hostname", "cryptocurrency-wallet", "user-agent", "text", "phone-number", "bank-account",
    "credential", "tracking-number", "payment-card", "media-content", "cryptographic-key",
}  # fmt: skip
# Objects read for names or not imported at all (counted, never an error).
IGNORED_TYPES = {
    "identity", "location", "marking-definition", "extension-definition", "language-content",
    "course-of-action", "vulnerability", "infrastructure", "note", "opinion", "malware-analysis",
    "kill-chain-phase", "x-mitre-collection", "x-mitre-matrix", "x-mitre-tactic",
    "x-mitre-data-source", "x-mitre-data-component", "x-mitre-detection-strategy",
    "x-mitre-analytic", "x-mitre-asset",
}  # fmt: skip

ATTACK_SOURCES = {"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack"}
OPENCTI_EXT = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
OPENCTI_SCO_EXT = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
# "PowerShell - T1059.001" (MISP galaxy values and misp-stix names), "T1059.001 - PowerShell".
ID_IN_NAME = re.compile(r"(?:^|\s-\s)([TGSC]\d{4}(?:\.\d{3})?)(?:\s-\s|\s*$)")


def utc_now() -> str:
    """Now, in UTC, to the second (ISO 8601): when a node was imported or a link made."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def one_line(text: object) -> str:
    """``text`` (an exception, say) on one line, for a message naming what is wrong."""
    return re.sub(r"\s+", " ", str(text)).strip()


def nonblank(value: Any) -> str | None:
    """A string field that holds some text, else None."""
    if isinstance(value, str) and value.strip():
        return value
    return None


def list_of(value: Any) -> list[Any]:
    """A list field as a list (anything else - missing, a string, a number - as empty)."""
    return value if isinstance(value, list) else []


def strings_of(value: Any) -> list[str]:
    """A field of strings (one string or a list) as a list of its non-blank strings."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def stamp_text(value: Any) -> str | None:
    """A STIX timestamp as text (stix2 objects hold datetimes)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def org_key(source: str, stix_id: str) -> str:
    """The unique ``key`` of the organisation's node: the import's source and the STIX id."""
    return f"{source}|{stix_id}"


def extension_of(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """An object's STIX extension ``name`` (OpenCTI's, say), or an empty dict."""
    exts = obj.get("extensions")
    if isinstance(exts, dict) and isinstance(exts.get(name), dict):
        return exts[name]  # type: ignore[no-any-return]
    return {}


def check_source(source: str) -> str:
    """A source label with its white space collapsed; InvalidInput when empty or too long."""
    s = re.sub(r"\s+", " ", source or "").strip()
    if not s:
        raise InvalidInput("source label is empty")
    if len(s) > 200:
        raise InvalidInput("source label longer than 200 characters")
    return s
