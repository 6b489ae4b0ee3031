"""A `stac-api` upstream that answers an HTML page (a login wall, a proxy's error page)
fails that source with a message saying so, not an "unexpected error" with a traceback
(issue 14, should-fix list). Real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ingest.catalogs import file_server

HTML = "<!DOCTYPE html><html><body><h1>Please sign in</h1></body></html>"
ITEM_SEARCH = "https://api.stacspec.org/v1.0.0/item-search"


def landing(base: str) -> dict[str, object]:
    return {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "api",
        "description": "an API whose search answers HTML",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", ITEM_SEARCH],
        "links": [
            {"rel": "self", "href": f"{base}/api.json", "type": "application/json"},
            {"rel": "root", "href": f"{base}/api.json", "type": "application/json"},
            {"rel": "search", "href": f"{base}/search", "type": "application/geo+json",
             "method": "GET"},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("index.html", "cannot open the STAC API"),
        ("api.json", "the search stopped after page 0"),
    ],
)
async def test_an_html_answer_fails_the_source_with_a_clear_message(
    harvest, tmp_path: Path, path: str, expected: str
) -> None:
    (tmp_path / "index.html").write_text(HTML)
    (tmp_path / "search").write_text(HTML)
    with file_server(tmp_path) as base:
        (tmp_path / "api.json").write_text(json.dumps(landing(base)))
        url = f"{base}/" if path == "index.html" else f"{base}/{path}"
        source = {"id": "html", "kind": "stac-api", "url": url, "retries": 0}
        [outcome] = await harvest(source)
    assert outcome.status == "failed"
    message = outcome.message or ""
    assert expected in message
    assert "the answer is not JSON" in message and "<!DOCTYPE html>" in message
    assert "unexpected error" not in message
