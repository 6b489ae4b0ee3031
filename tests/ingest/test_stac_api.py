"""`stac-api` against our own API under uvicorn on 127.0.0.1, seeded through bulk_items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import URL
from starlette.types import ASGIApp, Receive, Scope, Send

from api import create_app
from catalogue.repositories.jobs import JobStatus
from ingest.config import parse_sources
from ingest.sources.stac_api import StacApiHarvester
from tests.helpers import TEST_API_KEY, grid_items, live_server, make_collection, make_settings
from tests.ingest.conftest import rows, scalar, validate_items

pytestmark = pytest.mark.slow
COUNT = 120


# Search results that are not items, appended to the first page by `bad_features`.
BAD_FEATURES = [
    42,
    {"type": "Feature", "collection": "scenes"},  # no id
    {"type": "Feature", "id": "props-text", "collection": "scenes", "properties": "x"},
    {"type": "Feature", "id": "bow-tie", "collection": "scenes", "stac_version": "1.1.0",
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
     "properties": {"datetime": "2021-01-01T00:00:00Z"}, "links": [], "assets": {}},
]  # fmt: skip


class Misbehave:
    """ASGI wrapper: hides the conformance classes, fails /search N times with a 503, or
    appends `BAD_FEATURES` to the first search page."""

    def __init__(
        self,
        app: ASGIApp,
        hide_conformance: bool = False,
        fail_search: int = 0,
        bad_features: bool = False,
    ):
        self.app, self.hide_conformance, self.fail_search = app, hide_conformance, fail_search
        self.bad_features = bad_features
        self.search_calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/search":
            self.search_calls += 1
            if self.search_calls <= self.fail_search:
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"busy"})
                return
        if scope["type"] == "http" and self.hide_conformance and path in ("/", "/conformance"):
            await self._without_conformance(scope, receive, send)
            return
        if path == "/search" and self.bad_features and self.search_calls == 1:
            await self._rewritten(scope, receive, send, self._with_bad_features)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _with_bad_features(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "features": [*body["features"], *BAD_FEATURES]}

    async def _rewritten(self, scope: Scope, receive: Receive, send: Send, change: Any) -> None:
        parts: list[Any] = []

        async def capture(message: Any) -> None:
            parts.append(message)

        plain = [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]
        await self.app({**scope, "headers": plain}, receive, capture)
        body = change(json.loads(b"".join(m.get("body", b"") for m in parts[1:])))
        headers = [(b"content-type", b"application/geo+json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def _without_conformance(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts: list[Any] = []

        async def capture(message: Any) -> None:
            parts.append(message)

        plain = [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]
        await self.app({**scope, "headers": plain}, receive, capture)
        body = json.loads(b"".join(m.get("body", b"") for m in parts[1:]))
        body.pop("conformsTo", None)
        if scope["path"] == "/conformance":
            body = {"conformsTo": []}
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@contextmanager
def upstream(
    server_url: URL, template_url: URL, **misbehave: Any
) -> Iterator[tuple[str, httpx.Client, Misbehave]]:
    """Our API on a database of its own, holding collection `scenes` with COUNT items."""
    from tests.conftest import clone_database

    app = Misbehave(
        create_app(make_settings(clone_database(server_url, template_url))), **misbehave
    )
    with live_server(app) as base:  # type: ignore[arg-type]  # any ASGI app serves
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            assert http.post("/collections", json=make_collection("scenes")).status_code == 201
            items = {item["id"]: item for item in grid_items(COUNT, "scenes")}
            bulk = {"items": items, "method": "insert"}
            assert http.post("/collections/scenes/bulk_items", json=bulk).status_code == 200
            yield base, http, app


def source(url: str, **extra: object) -> dict[str, object]:
    return {
        "id": "scenes-api",
        "kind": "stac-api",
        "url": url,
        "collections": ["scenes"],
        "page_size": 25,
        "retry_wait_s": 0.05,
        **extra,
    }


async def test_first_run_then_unchanged_rerun(harvest, catalogue, server_url, template_url) -> None:
    with upstream(server_url, template_url) as (base, _, _):
        [first] = await harvest(source(base))
        versions = await rows(catalogue, "SELECT id, xmin::text AS v FROM items ORDER BY id")
        [second] = await harvest(source(base))
    assert first.status is JobStatus.SUCCEEDED, first.message
    assert first.counts.new == COUNT
    assert second.counts.summary() == f"0 new, 0 changed, {COUNT} unchanged, 0 removed, 0 failed"
    assert await rows(catalogue, "SELECT id, xmin::text AS v FROM items ORDER BY id") == versions
    collection = await scalar(catalogue, "SELECT content FROM collections WHERE id = 'scenes'")
    assert collection["description"] == "Test collection scenes"
    contents = await rows(catalogue, "SELECT content FROM items ORDER BY id LIMIT 20")
    assert validate_items([row.content for row in contents]) == 20


async def test_changed_and_removed_upstream_items_with_mirror(
    harvest, catalogue, server_url, template_url
) -> None:
    with upstream(server_url, template_url) as (base, http, _):
        await harvest(source(base, mirror=True))
        item = http.get("/collections/scenes/items/item-0010").json()
        item["properties"]["eo:cloud_cover"] = 42
        item["links"] = []
        assert http.put("/collections/scenes/items/item-0010", json=item).status_code == 200
        assert http.delete("/collections/scenes/items/item-0011").status_code in (200, 204)
        [outcome] = await harvest(source(base, mirror=True))
    assert outcome.counts.as_dict() == {
        "new": 0, "changed": 1, "unchanged": COUNT - 2, "removed": 1, "failed": 0
    }  # fmt: skip
    changed = await scalar(catalogue, "SELECT content FROM items WHERE id = 'item-0010'")
    assert changed["properties"]["eo:cloud_cover"] == 42
    assert await scalar(catalogue, "SELECT count(*) FROM items WHERE id = 'item-0011'") == 0


async def test_results_that_are_not_items_are_reported_and_the_rest_harvested(
    harvest, catalogue, server_url, template_url
) -> None:
    """Items stay bytes until read (ingest.raw_items): what cannot be read is a problem of
    its own, found either by the head decoder or by the full parse and item checks."""
    with upstream(server_url, template_url, bad_features=True) as (base, _, app):
        [outcome] = await harvest(source(base))
        app.search_calls = 0  # the rerun's first page gets them again
        [rerun] = await harvest(source(base))
    assert outcome.status is JobStatus.SUCCEEDED
    assert outcome.counts.new == COUNT and outcome.counts.failed == len(BAD_FEATURES)
    reasons = sorted(problem.reason for problem in outcome.problems)
    assert sum("not a STAC item object" in reason for reason in reasons) == 2, reasons
    assert any("without a string id" in reason for reason in reasons), reasons
    assert any("invalid geometry" in reason for reason in reasons), reasons
    assert await scalar(catalogue, "SELECT count(*) FROM items") == COUNT
    assert rerun.counts.unchanged == COUNT and rerun.counts.failed == len(BAD_FEATURES)


async def test_search_that_fails_twice_then_answers_is_retried(
    harvest, catalogue, server_url, template_url
) -> None:
    with upstream(server_url, template_url, fail_search=2) as (base, _, app):
        [outcome] = await harvest(source(base))
    assert outcome.status is JobStatus.SUCCEEDED and outcome.counts.new == COUNT
    assert app.search_calls == 2 + COUNT // 25 + 1  # two 503s, then every page


async def test_a_server_without_conformance_classes_is_searched_with_a_warning(
    harvest, catalogue, server_url, template_url, caplog
) -> None:
    with upstream(server_url, template_url, hide_conformance=True) as (base, _, _):
        [outcome] = await harvest(source(base))
    assert outcome.status is JobStatus.SUCCEEDED and outcome.counts.new == COUNT
    assert "advertises no conformance classes" in caplog.text


async def test_a_filter_on_a_server_without_the_filter_extension_is_refused(
    harvest, catalogue, server_url, template_url
) -> None:
    cql2 = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]}
    with upstream(server_url, template_url) as (base, _, _):
        [outcome] = await harvest(source(base, filter=cql2))
    assert outcome.status is JobStatus.FAILED
    assert "filter" in (outcome.message or "")
    assert await scalar(catalogue, "SELECT count(*) FROM items") == 0


async def test_datetime_cursor_narrows_the_next_search(
    harvest, catalogue, server_url, template_url
) -> None:
    with upstream(server_url, template_url) as (base, _, _):
        [first] = await harvest(source(base, cursor="datetime", cursor_overlap="PT2H"))
        [second] = await harvest(source(base, cursor="datetime", cursor_overlap="PT2H"))
    assert first.counts.new == COUNT
    # grid items are one hour apart: the cursor (newest) minus 2 h leaves 3 items to look at
    assert second.counts.as_dict() == {
        "new": 0, "changed": 0, "unchanged": 3, "removed": 0, "failed": 0
    }  # fmt: skip
    cursor = await scalar(catalogue, "SELECT cursor FROM sources WHERE id = 'scenes-api'")
    assert cursor == {"datetime": "2021-01-05T23:00:00+00:00"}


def test_search_parameters_carry_the_whole_config() -> None:
    [config] = parse_sources(
        {
            "sources": [
                source(
                    "http://127.0.0.1:9/stac",
                    bbox=[9.7, 53.4, 10.2, 53.7],
                    datetime="2021-07-01/2021-07-10",
                    filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
                )
            ]
        }
    )
    parameters = StacApiHarvester(config).search_parameters({})  # type: ignore[arg-type]
    assert parameters == {
        "method": "POST",
        "limit": 25,
        "collections": ["scenes"],
        "bbox": [9.7, 53.4, 10.2, 53.7],
        "datetime": "2021-07-01T00:00:00Z/2021-07-10T23:59:59Z",
        "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
        "filter_lang": "cql2-json",
    }
