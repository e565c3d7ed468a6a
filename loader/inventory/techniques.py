"""ATT&CK technique ids: the accepted spellings, and the collector of one rule's ids."""

from __future__ import annotations

import re

from .values import as_list, one_line, scalar_str

_TECHNIQUE_RE = re.compile(
    r"(?:attack\.)?T(?P<tech>\d{4})(?:[./-](?P<sub>\d{3}))?",
    re.IGNORECASE | re.ASCII,
)
_TECHNIQUE_URL_RE = re.compile(
    r"https?://attack\.mitre\.org/techniques/T(?P<tech>\d{4})(?:/(?P<sub>\d{3}))?/?",
    re.IGNORECASE | re.ASCII,
)


def normalize_technique_id(raw: object) -> str | None:
    """Return the canonical ATT&CK technique id for ``raw``, or ``None`` if it is not one.

    Accepted, after stripping surrounding whitespace, case-insensitively:

    - ``T1059``, ``t1059`` -- ``T`` and exactly four ASCII digits;
    - a sub-technique written ``T1059.001``, ``T1059/001`` or ``T1059-001`` -- exactly three
      digits, not ``000``;
    - either of the above with the Sigma tag namespace ``attack.`` (``attack.t1059.001``);
    - an attack.mitre.org technique URL (``https://attack.mitre.org/techniques/T1059/001/``).

    Everything else is rejected: tactics (``TA0002``, ``attack.execution``), groups, software,
    data sources, mitigations (``attack.g0016``, ``S0154``, ``DS0009``, ``M1036``), ATLAS ids
    (``AML.T0051``), sub-techniques with other than three digits (``T1059.1``: ambiguous),
    five-digit numbers, inner whitespace (``T 1059``), a missing ``T`` (``1059.001``), trailing
    text (``T1059.001 PowerShell``) and non-string values.

    >>> normalize_technique_id(" attack.t1059.001 ")
    'T1059.001'
    >>> normalize_technique_id("AML.T0051") is None
    True
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    m = _TECHNIQUE_RE.fullmatch(text) or _TECHNIQUE_URL_RE.fullmatch(text)
    if m is None:
        return None
    sub = m.group("sub")
    if sub is None:
        return f"T{m.group('tech')}"
    if sub == "000":
        return None
    return f"T{m.group('tech')}.{sub}"


class Techniques:
    """Collects the technique ids of one rule; rejected values go to the inventory's ignored set."""

    def __init__(self, ignored: set[str]) -> None:
        self.ids: set[str] = set()
        self.raw: list[str] = []
        self._raw_seen: set[str] = set()  # membership in constant time (a list was quadratic)
        self._ignored = ignored

    def add(self, value: object, *, keep_raw: bool = True) -> None:
        text = scalar_str(value)
        if text is None or not text.strip():
            return
        text = text.strip()
        if keep_raw and text not in self._raw_seen:
            self._raw_seen.add(text)
            self.raw.append(text)
        tid = normalize_technique_id(text)
        if tid is None:
            self._ignored.add(one_line(text, 80))
        else:
            self.ids.add(tid)

    def add_all(self, values: object) -> None:
        for value in as_list(values):
            self.add(value)

    def sorted(self) -> list[str]:
        return sorted(self.ids)
