"""Typed results shared by services, the API and the CLI."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, field_validator


class Release(BaseModel):
    domain: str = Field(description="ATT&CK domain, e.g. enterprise-attack")
    version: str | None = Field(description="ATT&CK release, e.g. 18.1")
    spec_version: str = Field(description="STIX spec version of the source bundle")
    source: str
    sha256: str
    nodes: int
    relationships: int
    counts: dict[str, int]
    loaded_at: str

    @field_validator("counts", mode="before")
    @classmethod
    def _parse_counts(cls, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v


class LabelCount(BaseModel):
    label: str
    total: int
    current: int
    retired: int = Field(description="revoked or deprecated")


class GraphStatus(BaseModel):
    releases: list[Release]
    labels: list[LabelCount]
