"""Inventory format name -> parser: parse or stream an inventory by its format's name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from queries.errors import InvalidInput

from .csv_list import parse_csv, stream_csv
from .elastic import parse_elastic
from .layer import parse_layer
from .model import ParsedInventory, RuleStream
from .sentinel import parse_sentinel
from .sigma import parse_sigma
from .splunk import parse_splunk, parse_splunk_es
from .values import one_line

PARSERS: dict[str, Callable[[Path], ParsedInventory]] = {
    "sigma": parse_sigma,
    "elastic": parse_elastic,
    "splunk": parse_splunk,
    "splunk-es": parse_splunk_es,
    "sentinel": parse_sentinel,
    "csv": parse_csv,
    "layer": parse_layer,
}
"""Inventory format name -> parser."""


def parse_inventory(fmt: str, path: Path | str) -> ParsedInventory:
    """Parse ``path`` with the ``fmt`` parser; :class:`InvalidInput` for an unknown format."""
    parser = PARSERS.get(fmt.strip().lower())
    if parser is None:
        raise InvalidInput(
            f"unknown inventory format: {one_line(fmt, 60)}", suggestions=sorted(PARSERS)
        )
    return parser(Path(path))


def stream_inventory(fmt: str, path: Path | str) -> RuleStream:
    """:func:`parse_inventory` one rule at a time: CSV inventories are streamed from the file
    (:func:`stream_csv`); the other formats are parsed whole, then handed out."""
    key = fmt.strip().lower()
    if key == "csv":
        return stream_csv(Path(path))
    return RuleStream.of(parse_inventory(fmt, path))
