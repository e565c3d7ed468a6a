"""Settings, read once per process.

Precedence: environment variables (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE, ...)
override the settings file that `ttpgraph neo4j start` writes into the user's config folder
(``$XDG_CONFIG_HOME/ttpgraph/settings.json``, mode 0600), which overrides the defaults.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def config_dir() -> Path:
    base = os.environ.get("TTPGRAPH_CONFIG_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "ttpgraph"


def cache_dir() -> Path:
    base = os.environ.get("TTPGRAPH_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ttpgraph"


def settings_file() -> Path:
    return config_dir() / "settings.json"


def read_settings_file() -> dict[str, Any]:
    path = settings_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_settings_file(values: dict[str, Any]) -> Path:
    """Merge ``values`` into the settings file, readable by the user only."""
    path = settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = read_settings_file()
    data.update(values)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return path


class _FileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data = read_settings_file()
        return {k: v for k, v in data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str = "neo4j"
    # Seconds a single query may run before Neo4j aborts it (transaction timeout).
    ttpgraph_query_timeout: float = 30.0
    ttpgraph_max_pool_size: int = 50

    # --- the HTTP API (docs/api.md) ---
    # API keys are required unless this is false, and then only loopback connections are served.
    ttpgraph_api_auth: bool = True
    # Where API keys live, hashed (default: api-keys.json next to the settings file).
    ttpgraph_api_keys_file: str | None = None
    # Request limits (413, 414): bodies parsed in memory (JSON, forms), file uploads
    # (multipart, spooled to disk: two Enterprise bundles fit), URL length.
    ttpgraph_max_body_mb: float = 16.0
    ttpgraph_max_upload_mb: float = 200.0
    ttpgraph_max_url_chars: int = 8192
    # POST /api/v1/cypher: rows returned at most, and its transaction timeout in seconds; the
    # answer's size at most (JSON, MB); queries at once per API key and in all (counted in
    # Neo4j, across workers); the memory of each worker's Cypher child process (MB).
    ttpgraph_cypher_max_rows: int = 1000
    ttpgraph_cypher_timeout: float = 10.0
    ttpgraph_cypher_max_mb: float = 8.0
    ttpgraph_cypher_per_key: int = 2
    ttpgraph_cypher_max_concurrent: int = 4
    ttpgraph_cypher_runner_mb: int = 1024
    # uvicorn worker processes (`ttpgraph serve --workers` sets it for every worker), and the
    # Bolt connections all of one host's workers may hold together, split between them.
    ttpgraph_workers: int = 1
    ttpgraph_pool_budget: int = 100
    # The API fails fast when Neo4j is away (503) instead of retrying for the driver's 30 s.
    ttpgraph_api_retry_seconds: float = 2.0
    ttpgraph_connect_timeout: float = 5.0
    # Response cache per worker: 200 answers kept until the graph's data version changes.
    ttpgraph_response_cache: bool = True
    ttpgraph_response_cache_mb: int = 64
    # Plan the catalog before serving (queries/warm.py), at most this many seconds; once per
    # Neo4j start and process. TTPGRAPH_WARM_UP=false serves at once.
    ttpgraph_warm_up: bool = True
    ttpgraph_warm_up_seconds: float = 60.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
