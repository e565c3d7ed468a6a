"""A fast acceptance check for the plain STIX 2.1 objects a million-IOC bundle is made of.

``stix2.parse`` costs 0.3-3 ms an object (an indicator's pattern goes through an ANTLR parser):
40 minutes for a million IOCs. :func:`plainly_valid` accepts, in microseconds, the objects whose
every property it knows and can check as strictly as ``stix2`` does — relationships, sightings,
indicators with a one-comparison pattern (``[ipv4-addr:value = '203.0.113.7']``), observables
holding a ``value`` — and answers ``False`` for anything else, which ``stix2`` then checks (and
names what is wrong, as before). It never refuses: a ``False`` only means "ask stix2". A test
checks it against ``stix2`` on real and mutated objects.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_ID = re.compile(rf"^([a-z][a-z0-9-]*[a-z0-9])--{_UUID}$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_SIMPLE_PATTERN = re.compile(
    r"^\[(ipv4-addr|ipv6-addr|domain-name|url|email-addr):value = '([^'\\]*)'\]$"
)
_VALUE_SCOS = {"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr"}
# SDO types a sighting may be of.
_SDO_TYPES = {
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident",
    "indicator", "infrastructure", "intrusion-set", "location", "malware", "malware-analysis",
    "note", "observed-data", "opinion", "report", "threat-actor", "tool", "vulnerability",
}  # fmt: skip
_NOT_RELATABLE = {"bundle", "language-content", "marking-definition", "relationship", "sighting"}
_RELATIONSHIP_TYPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,249}$")

_COMMON = {"type", "spec_version", "id", "created", "modified", "name", "description"}
_KEYS = {
    "relationship": _COMMON | {"relationship_type", "source_ref", "target_ref"},
    "sighting": _COMMON
    | {"sighting_of_ref", "observed_data_refs", "where_sighted_refs", "count", "first_seen",
       "last_seen"},
    "indicator": _COMMON | {"pattern", "pattern_type", "valid_from"},
}  # fmt: skip


def simple_pattern(pattern: str) -> str | None:
    """The literal of a one-comparison ``value`` pattern (``[domain-name:value = 'x']``), or
    None for any other pattern."""
    m = _SIMPLE_PATTERN.match(pattern)
    return m.group(2) if m else None


def _stamp(value: Any) -> bool:
    if not isinstance(value, str) or not _STAMP.match(value):
        return False
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def _ref(value: Any, types: set[str] | None = None, *, exclude: set[str] | None = None) -> bool:
    if not isinstance(value, str):
        return False
    m = _ID.match(value)
    if not m:
        return False
    kind = m.group(1)
    return (types is None or kind in types) and (exclude is None or kind not in exclude)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def plainly_valid(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is certainly a valid STIX 2.1 object (see the module docstring)."""
    otype = obj.get("type")
    oid = obj.get("id")
    if not isinstance(otype, str) or not isinstance(oid, str) or not _ref(oid):
        return False
    if not oid.startswith(otype + "--"):
        return False
    if otype in _VALUE_SCOS:
        return (
            set(obj) <= {"type", "spec_version", "id", "value"}
            and obj.get("spec_version", "2.1") == "2.1"
            and _text(obj.get("value"))
        )
    keys = _KEYS.get(otype)
    if keys is None or not set(obj) <= keys:
        return False
    if obj.get("spec_version") != "2.1":
        return False
    created, modified = obj.get("created"), obj.get("modified")
    if not (_stamp(created) and _stamp(modified)) or str(modified) < str(created):
        return False
    for k in ("name", "description"):
        if k in obj and not _text(obj[k]):
            return False
    if otype == "relationship":
        return (
            isinstance(obj.get("relationship_type"), str)
            and bool(_RELATIONSHIP_TYPE.match(obj["relationship_type"]))
            and _ref(obj.get("source_ref"), exclude=_NOT_RELATABLE)
            and _ref(obj.get("target_ref"), exclude=_NOT_RELATABLE)
        )
    if otype == "sighting":
        if not _ref(obj.get("sighting_of_ref"), _SDO_TYPES):
            return False
        observed = obj.get("observed_data_refs", [])
        where = obj.get("where_sighted_refs", [])
        if not isinstance(observed, list) or not all(_ref(r, {"observed-data"}) for r in observed):
            return False
        if not isinstance(where, list) or not all(_ref(r, {"identity", "location"}) for r in where):
            return False
        count = obj.get("count", 0)
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 999999999:
            return False
        first, last = obj.get("first_seen"), obj.get("last_seen")
        if first is not None and not _stamp(first):
            return False
        if last is not None and not _stamp(last):
            return False
        return first is None or last is None or last >= first
    # indicator
    pattern = obj.get("pattern")
    return (
        obj.get("pattern_type") == "stix"
        and isinstance(pattern, str)
        and simple_pattern(pattern) is not None
        and _stamp(obj.get("valid_from"))
    )
