#!/usr/bin/env bash
# The test command: installs what the tests need (Python packages, Neo4j from Maven Central,
# Debian's Chromium for the UI test), then lint, types and the whole suite against a real Neo4j
# started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed: the UI test will be skipped (apt-get install chromium)" >&2
  fi
fi
python3 -m api.cli neo4j install
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy loader queries api
python3 -m pytest -q -p no:cacheprovider "$@"
