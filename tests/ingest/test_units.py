"""Pure parts of harvesting: config rules, filename periods, item checks, file ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from ingest.config import parse_datetime_range, parse_sources
from ingest.errors import RecordError
from ingest.metadata.when import from_attributes, from_pattern
from ingest.sources.files import _fixed_prefix, item_id
from ingest.stac import absolute_hrefs, item_fingerprint, item_row
from tests.helpers import make_item


@pytest.mark.parametrize(
    ("name", "pattern", "start", "end"),
    [
        ("agb_2010.nc", r"_(?P<year>\d{4})", "2010-01-01T00:00:00", "2010-12-31T23:59:59"),
        ("s2_202102.tif", r"_(?P<year>\d{4})(?P<month>\d\d)", "2021-02-01", "2021-02-28T23:59:59"),
        ("x_20201231.tif", r"(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)", "2020-12-31", None),
        ("t_2020-12-01T10.nc", r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)T(?P<hour>\d\d)",
         "2020-12-01T10:00:00", "2020-12-01T10:00:00"),
    ],
)  # fmt: skip
def test_the_finest_pattern_group_sets_the_period(
    name: str, pattern: str, start: str, end: str | None
) -> None:
    found = from_pattern(pattern, name)
    assert found is not None
    assert found.start == datetime.fromisoformat(start).replace(tzinfo=UTC)
    expected_end = end or "2020-12-31T23:59:59"
    assert found.end == datetime.fromisoformat(expected_end).replace(tzinfo=UTC)


def test_a_pattern_that_does_not_match_or_names_no_date_gives_nothing() -> None:
    assert from_pattern(r"_(?P<year>\d{4})", "no-year.tif") is None
    assert from_pattern(r"(?P<year>\d{4})(?P<month>\d\d)", "x_202113.tif") is None


def test_an_instant_and_a_period_become_stac_datetimes() -> None:
    instant = from_pattern(
        r"(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)(?P<hour>\d\d)", "2020010203"
    )
    assert instant is not None and instant.properties() == {"datetime": "2020-01-02T03:00:00Z"}
    period = from_attributes(
        {"time_coverage_start": "2019-01-01T00:00:00Z", "time_coverage_end": "2019-06-30"}
    )
    assert period is not None and period.properties()["datetime"] is None


def test_datetime_ranges_accept_dates_timestamps_and_open_ends() -> None:
    assert parse_datetime_range("2021-07-01/2021-07-10").as_parameter() == (
        "2021-07-01T00:00:00Z/2021-07-10T23:59:59Z"
    )
    assert parse_datetime_range("../2020-01-01T00:00:00Z").as_parameter() == (
        "../2020-01-01T00:00:00Z"
    )
    for bad in ("2021-07-10/2021-07-01", "2021-07-01T00:00:00", "a/b/c", ".."):
        with pytest.raises(ValueError):
            parse_datetime_range(bad)


def test_a_datetime_cursor_cannot_mirror() -> None:
    source = {"id": "a", "kind": "stac-api", "url": "https://x", "mirror": True}
    with pytest.raises(ValidationError, match="cannot be combined with cursor"):
        parse_sources({"sources": [{**source, "cursor": "datetime"}]})


def test_only_settings_that_shape_items_change_the_content_hash() -> None:
    base = {"id": "a", "kind": "stac-static", "url": "https://x/catalog.json"}
    [plain, tuned, other] = parse_sources(
        {"sources": [base, {**base, "id": "a2", "concurrency": 2}, {**base, "id": "a3"}]}
    )
    assert plain.content_hash(1) != tuned.content_hash(1)  # the id is part of it ...
    same_id = parse_sources({"sources": [{**base, "concurrency": 2, "retries": 0}]})[0]
    assert plain.content_hash(1) == same_id.content_hash(1)  # ... operational knobs are not
    assert plain.content_hash(1) != plain.content_hash(2)  # a new harvester version is
    changed = parse_sources({"sources": [{**base, "collections": ["c"]}]})[0]
    assert plain.content_hash(1) != changed.content_hash(1)
    assert other.id == "a3"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda item: item.pop("stac_version"), "stac_version"),
        (lambda item: item.update(bbox=[1, 2, 3]), "bbox"),
        (lambda item: item.update(links=[{"href": "x"}]), "links"),
        (lambda item: item["assets"].update(bad={"type": "x"}), "asset 'bad'"),
        (lambda item: item.update(geometry={"type": "Point", "coordinates": []}), "geometry"),
        (lambda item: item["properties"].update(datetime="yesterday"), "RFC 3339"),
        (lambda item: item.update(type="FeatureCollection"), "not a STAC item"),
    ],
)
def test_invalid_items_are_record_errors_that_say_why(mutate, reason: str) -> None:
    item = make_item("a")
    mutate(item)
    with pytest.raises(RecordError, match=reason) as error:
        item_row(item, "https://up/a.json")
    assert error.value.url == "https://up/a.json"


def test_relative_hrefs_are_resolved_against_the_document_url() -> None:
    item = make_item("a")
    item["assets"]["data"]["href"] = "../data/a.tif"
    item["links"] = [{"rel": "license", "href": "LICENSE"}]
    resolved = absolute_hrefs(item, "s3://bucket/cat/items/a.json")
    assert resolved["assets"]["data"]["href"] == "s3://bucket/cat/data/a.tif"
    assert resolved["links"][0]["href"] == "s3://bucket/cat/items/LICENSE"
    assert item["assets"]["data"]["href"] == "../data/a.tif"  # the input is left alone


def test_item_fingerprints_use_updated_else_the_content() -> None:
    item = make_item("a")
    hashed = item_fingerprint(item)
    assert hashed.startswith("sha256:")
    assert item_fingerprint({**item, "assets": {}}) != hashed
    item["properties"]["updated"] = "2024-01-01T00:00:00Z"
    assert item_fingerprint(item) == "updated:2024-01-01T00:00:00Z"


def test_file_item_ids_keep_subfolders_below_the_glob() -> None:
    root = _fixed_prefix("bucket/biomass/**/*.nc")
    assert root == "bucket/biomass"
    assert item_id("bucket/biomass/2010/agb.nc", root) == "2010-agb"
    assert item_id("bucket/biomass/agb.nc", root) == "agb"
    assert item_id("bucket/cubes/age.zarr", _fixed_prefix("bucket/cubes/*.zarr")) == "age"
    assert _fixed_prefix("/data/one.tif") == "/data"
