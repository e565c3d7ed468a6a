"""Loading through a real TAXII 2.1 server (medallion) on 127.0.0.1, paging included."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loader import sources
from loader.load import load_bundle
from loader.stix import BundleError
from queries.graph import Graph

from .bundle_facts import expected_counts, objects
from .conftest import ICS_21, free_port

COLLECTION = "90c00720-636b-4485-b342-8751d232bf09"  # MITRE's ICS collection id (UUID part)


def _medallion_data(bundle: Path) -> dict:
    objs = list(objects(bundle))
    manifest = [
        {
            "id": o["id"],
            "date_added": "2025-11-13T00:00:00.000000Z",
            "version": o.get("modified", o.get("created", "2025-11-13T00:00:00.000Z")),
            "media_type": "application/stix+json;version=2.1",
        }
        for o in objs
    ]
    return {
        "/discovery": {
            "title": "test TAXII",
            "default": "http://127.0.0.1/api1/",
            "api_roots": ["http://127.0.0.1/api1/"],
        },
        "api1": {
            "information": {
                "title": "ATT&CK",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 100000000,
            },
            "status": [],
            "collections": [
                {
                    "id": COLLECTION,
                    "title": "ICS ATT&CK",
                    "can_read": True,
                    "can_write": False,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objs,
                    "manifest": manifest,
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def taxii_server(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("taxii")
    data = folder / "data.json"
    data.write_text(json.dumps(_medallion_data(ICS_21)))
    config = folder / "config.json"
    config.write_text(
        json.dumps(
            {
                "backend": {
                    "module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend",
                    "filename": str(data),
                },
                "users": {"reader": "secret"},
                "taxii": {"max_page_size": 500},
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "medallion.scripts.run", "--host", "127.0.0.1", "--port",
         str(port), str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api1/"
    deadline = time.monotonic() + 30
    import urllib.request

    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/taxii2/", timeout=1)
        except urllib.error.HTTPError:
            break  # answering (401 without credentials)
        except OSError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_taxii_pages_through_the_whole_collection(taxii_server: str, graph: Graph) -> None:
    pages: list[int] = []
    fetched = sources.from_taxii(
        taxii_server,
        domain="ics-attack",
        user="reader",
        password="secret",
        per_request=500,
        on_page=pages.append,
    )
    assert len(pages) >= 4, "the collection should take several pages"
    assert sum(pages) == len(objects(ICS_21))
    assert {o["id"] for o in fetched.objects} == {o["id"] for o in objects(ICS_21)}
    res = load_bundle(graph, fetched)
    assert res.domain == "ics-attack" and res.release == "18.1" and res.spec_version == "2.1"
    assert {k: v for k, v in res.counts.items() if v} == expected_counts(ICS_21)


def test_taxii_server_down() -> None:
    port = free_port()
    with pytest.raises(BundleError, match="unreachable or broken"):
        sources.from_taxii(f"http://127.0.0.1:{port}/api1/", domain="ics-attack")


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b"<html>definitely not TAXII</html>"
        self.send_response(200)
        self.send_header("Content-Type", "application/taxii+json;version=2.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_taxii_server_answering_garbage() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(BundleError) as info:
            sources.from_taxii(f"http://127.0.0.1:{server.server_port}/api1/", domain="ics-attack")
        assert "\n" not in str(info.value)
    finally:
        server.shutdown()
