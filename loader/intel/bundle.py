"""A STIX bundle read in two passes: the first (:func:`scan_bundle`) learns what the objects
refer to, the second checks each object (:func:`validate_object`) and turns it into rows
(:mod:`loader.intel.stix`), keeping what it must come back to on disk (:class:`Spill`) and
where each STIX id stands in the graph (:class:`EndpointMap`)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from queries.errors import InvalidInput

from .attack import attack_ids_of
from .common import ALL_LABELS, ATTACK_KIND, OPENCTI_EXT, list_of, one_line, org_key
from .fastcheck import plainly_valid, simple_pattern
from .iocs import MAX_PATTERN_CHARS, pattern_problem
from .rows import Endpoint

_STIX_ID = re.compile(r"^([a-z0-9][a-z0-9-]*)--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                      r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")  # fmt: skip
_ATTACK_PREFIXES = tuple(f"{t}--" for t in ATTACK_KIND)
_LABEL_CODES = {label: i for i, label in enumerate(ALL_LABELS)}


def _flavour_of(obj: dict[str, Any]) -> str | None:
    """The exporter an object betrays (``opencti``, ``misp``, ``workbench``), if any."""
    if (
        "extensions" not in obj
        and "labels" not in obj
        and "\0x_" not in "\0" + "\0".join(obj)  # no custom property (one C-level scan)
        and obj.get("type") != "x-mitre-collection"
    ):
        return None  # the plain object of a large bundle
    if OPENCTI_EXT in (obj.get("extensions") or {}) or any(k.startswith("x_opencti_") for k in obj):
        return "opencti"
    if any(str(label).startswith("misp:") for label in list_of(obj.get("labels"))) or any(
        k.startswith("x_misp_") for k in obj
    ):
        return "misp"
    if obj.get("type") == "x-mitre-collection" or "x_mitre_attack_spec_version" in obj:
        return "workbench"
    return None


def validate_object(obj: Any, i: int, version: str | None) -> dict[str, Any]:
    """One STIX object checked with ``stix2`` (custom content allowed); InvalidInput naming it."""
    import stix2
    from stix2.exceptions import STIXError

    if not isinstance(obj, dict):
        raise InvalidInput(f"objects[{i}]: expected a STIX object, got {type(obj).__name__}")
    oid, otype = obj.get("id"), obj.get("type")
    if not isinstance(otype, str) or not otype:
        raise InvalidInput(f"objects[{i}] ({oid}): 'type' is missing")
    if not isinstance(oid, str) or not _STIX_ID.match(oid) or not oid.startswith(otype + "--"):
        raise InvalidInput(f"objects[{i}] ({oid}): 'id' must be '{otype}--<UUID>'")
    pattern = obj.get("pattern")
    # (a one-comparison pattern within the length limit nests one level: nothing to walk)
    if isinstance(pattern, str) and (
        len(pattern) > MAX_PATTERN_CHARS or simple_pattern(pattern) is None
    ):
        problem = pattern_problem(pattern)
        if problem:
            raise InvalidInput(f"objects[{i}] ({oid}): pattern {problem}")
    if plainly_valid(obj):
        return obj
    try:
        stix2.parse(obj, allow_custom=True, version=obj.get("spec_version") or version)
    except (STIXError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(f"objects[{i}] ({oid}): {one_line(exc)}") from None
    except RecursionError:
        raise InvalidInput(f"objects[{i}] ({oid}): nested too deeply to validate") from None
    return obj


@dataclass
class Scan:
    """What the first pass over a bundle learns: how many objects, which ids occur twice, the
    exporter, the ATT&CK objects it may refer to, the identities' names, what is sighted."""

    count: int = 0
    ids: set[int] = field(default_factory=set)
    dups: set[int] = field(default_factory=set)
    flavours: set[str] = field(default_factory=set)
    attack_refs: set[str] = field(default_factory=set)
    claimed: list[str] = field(default_factory=list)
    identities: list[tuple[int, str, str, str]] = field(default_factory=list)
    sighted: set[str] = field(default_factory=set)
    latest: dict[str, int] = field(default_factory=dict)  # only for ids that occur twice

    @property
    def flavour(self) -> str:
        for f in ("opencti", "misp", "workbench"):
            if f in self.flavours:
                return f
        return "stix"

    def keep(self, i: int, oid: str) -> bool:
        """Whether object ``i`` is the version of its id that counts (the latest)."""
        return hash(oid) not in self.dups or self.latest.get(oid) == i


def scan_bundle(objects: Iterable[Any]) -> Scan:
    """The first pass over a bundle's objects (see :class:`Scan`)."""
    sc = Scan()
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise InvalidInput(f"objects[{i}]: expected a STIX object, got {type(obj).__name__}")
        oid = obj.get("id")
        if not isinstance(oid, str):
            raise InvalidInput(f"objects[{i}]: 'id' is missing")
        h = hash(oid)
        if h in sc.ids:
            sc.dups.add(h)
        else:
            sc.ids.add(h)
        flavour = _flavour_of(obj)
        if flavour:
            sc.flavours.add(flavour)
        otype = obj.get("type")
        refs = [oid, obj.get("source_ref"), obj.get("target_ref"), obj.get("sighting_of_ref")]
        refs += list_of(obj.get("object_refs")) + list_of(obj.get("observed_data_refs"))
        for ref in refs:
            if isinstance(ref, str) and ref.startswith(_ATTACK_PREFIXES):
                sc.attack_refs.add(ref)
        if otype in ATTACK_KIND:
            sc.claimed.extend(attack_ids_of(obj))
        elif otype == "identity" and isinstance(obj.get("name"), str):
            sc.identities.append((i, oid, str(obj.get("modified") or ""), obj["name"]))
        elif otype == "sighting" and isinstance(obj.get("sighting_of_ref"), str):
            sc.sighted.add(obj["sighting_of_ref"])
        sc.count += 1
    return sc


def resolve_versions(sc: Scan, objects: Iterable[Any]) -> None:
    """For the ids that occur more than once: which occurrence is the latest version."""
    best: dict[str, tuple[int, str]] = {}
    for i, obj in enumerate(objects):
        oid = obj["id"]
        if hash(oid) not in sc.dups:
            continue
        modified = str(obj.get("modified") or "")
        prev = best.get(oid)
        if prev is None or modified >= prev[1]:
            best[oid] = (i, modified)
    sc.latest = {oid: i for oid, (i, _) in best.items()}


class EndpointMap(MutableMapping[str, list[Endpoint]]):
    """STIX id -> what it stands for in the graph. The organisation's own nodes (a million IOCs)
    are kept as a label code, their key being the source and the id."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.org: dict[str, int] = {}
        self.other: dict[str, list[Endpoint]] = {}

    def __getitem__(self, ref: str) -> list[Endpoint]:
        code = self.org.get(ref)
        if code is not None:
            return [Endpoint("org", org_key(self.source, ref), ALL_LABELS[code])]
        return self.other[ref]

    def __setitem__(self, ref: str, value: list[Endpoint]) -> None:
        self.org.pop(ref, None)
        self.other.pop(ref, None)
        if len(value) == 1 and value[0].kind == "org" and value[0].ref == org_key(self.source, ref):
            self.org[ref] = _LABEL_CODES[value[0].label]
        else:
            self.other[ref] = value

    def __delitem__(self, ref: str) -> None:
        if self.org.pop(ref, None) is None:
            del self.other[ref]

    def __iter__(self) -> Iterator[str]:
        yield from self.org
        yield from self.other

    def __len__(self) -> int:
        return len(self.org) + len(self.other)

    def __contains__(self, ref: object) -> bool:
        return ref in self.org or ref in self.other


class Spill:
    """Objects set aside for after the nodes (relationships, sightings...), in a temporary file
    rather than in memory."""

    def __init__(self) -> None:
        self.fh = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, i: int, obj: dict[str, Any]) -> None:
        self.fh.write(orjson.dumps([i, obj]) + b"\n")
        self.count += 1

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        self.fh.seek(0)
        for line in self.fh:
            i, obj = orjson.loads(line)
            yield i, obj

    def close(self) -> None:
        self.fh.close()
