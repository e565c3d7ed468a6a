"""IOC values: what an indicator's STIX pattern compares with (and patterns refused before they
are parsed), an observable's lookup values, and the type of an IOC an analyst types."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from queries.errors import InvalidInput

from .fastcheck import simple_pattern

# STIX patterns are parsed by a recursive (ANTLR) parser: a pattern nested 3,000 deep raised
# RecursionError (a 500). Real indicators nest a few levels and stay under a few KB.
MAX_PATTERN_CHARS = 64 * 1024
MAX_PATTERN_NESTING = 50


def pattern_problem(pattern: str) -> str | None:
    """Why a STIX pattern is refused before it is parsed (too long, nested too deeply), or
    None. One linear pass; quoted strings are skipped."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"is longer than {MAX_PATTERN_CHARS // 1024} KB"
    depth = 0
    quoted = escaped = False
    for c in pattern:
        if quoted:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == "'":
                quoted = False
        elif c == "'":
            quoted = True
        elif c in "([":
            depth += 1
            if depth > MAX_PATTERN_NESTING:
                return f"nests brackets deeper than {MAX_PATTERN_NESTING} levels"
        elif c in ")]":
            depth -= 1
    return None


def pattern_values(pattern: str) -> list[str]:
    """The literal values an indicator's STIX pattern compares with ``=`` or ``IN`` (lower-cased):
    ``[ipv4-addr:value = '203.0.113.7']`` -> ``['203.0.113.7']``; object types are left out."""
    literal = simple_pattern(pattern)
    if literal is not None:  # the common one-comparison pattern, without the ANTLR parser
        return [literal.strip().lower()] if literal.strip() else []
    from stix2patterns.v21.pattern import Pattern

    if pattern_problem(pattern):
        return []
    try:
        comparisons = Pattern(pattern).inspect().comparisons
    except Exception:  # an invalid pattern was refused earlier; a non-STIX one has no values
        return []
    out: list[str] = []
    for _obj_type, items in comparisons.items():
        for path, op, value in items:
            if op not in ("=", "IN") or (path and path[-1] in ("type", "resolves_to_refs")):
                continue
            for v in re.findall(r"'((?:[^'\\]|\\.)*)'", str(value)):
                v = v.replace("\\'", "'").replace("\\\\", "\\").strip()
                if v:
                    out.append(v.lower())
    return list(dict.fromkeys(out))


def observable_values(obj: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(display value, lookup values) of a STIX cyber-observable."""
    values: list[str] = []
    main = None
    for k in ("value", "name", "key", "path", "user_id", "account_login", "number", "subject"):
        v = obj.get(k)
        if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip():
            main = main or str(v)
            values.append(str(v))
    hashes = obj.get("hashes")
    if isinstance(hashes, dict):
        for h in hashes.values():
            if isinstance(h, str) and h.strip():
                main = main or h
                values.append(h)
    return main, list(dict.fromkeys(v.strip().lower() for v in values))


_HASH_TYPES = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


def guess_ioc(value: str) -> tuple[str, str]:
    """(STIX observable type, normalised value) of an IOC typed by an analyst."""
    v = value.strip()
    if not v:
        raise InvalidInput("empty IOC")
    if len(v) > 2048:
        raise InvalidInput(f"IOC longer than 2048 characters: {v[:40]}...")
    try:
        ip = ipaddress.ip_address(v)
        return ("ipv6-addr" if ip.version == 6 else "ipv4-addr"), v
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-F]+", v) and len(v) in _HASH_TYPES:
        return "file", v.lower()
    if re.match(r"^[a-z][a-z0-9+.-]*://", v, re.I):
        return "url", v
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v):
        return "email-addr", v
    if re.fullmatch(r"(?=.{1,253}$)([a-z0-9_-]{1,63}\.)+[a-z]{2,63}\.?", v, re.I):
        return "domain-name", v.lower().rstrip(".")
    return "text", v
