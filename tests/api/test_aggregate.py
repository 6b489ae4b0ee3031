"""The Aggregation extension against a brute-force evaluation of the same items.

A few hundred generated items (random datetimes, boxes, collections, platforms, grid codes,
cloud covers, sun elevations) go in through the API; every aggregation of `/aggregate` is
then computed here in Python over the same items, filtered here in Python (bbox,
intersects, datetime, ids, a CQL2 filter, the Query extension), and compared exactly: GET
and POST, at the root and per collection. The geohash is a small implementation of its own
below, the geotile the standard web-mercator formula.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from shapely.geometry import box, shape

from api import create_app
from tests.helpers import make_collection, make_item

COLLECTIONS = ("alpha", "beta", "gamma")
PLATFORMS = ("sentinel-2a", "sentinel-2b", "landsat-8", "landsat-9")
START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_S = 4 * 365 * 86400


def generated_items(count: int = 300, seed: int = 16) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    items = []
    for index in range(count):
        collection = COLLECTIONS[0] if index % 2 else rng.choice(COLLECTIONS)
        properties: dict[str, Any] = {}
        if rng.random() < 0.9:
            properties["platform"] = rng.choice(PLATFORMS)
        if rng.random() < 0.85:
            properties["eo:cloud_cover"] = round(rng.uniform(0, 100), 1)
        if collection != "gamma":
            properties["grid:code"] = f"MGRS-{rng.randint(30, 33)}U{rng.choice('PQ')}"
            properties["view:sun_elevation"] = round(rng.uniform(-10, 70), 2)
        item = make_item(
            f"item-{index:03d}",
            collection,
            lon=round(rng.uniform(-170, 160), 3),
            lat=round(rng.uniform(-80, 70), 3),
            size=round(rng.uniform(0.01, 8), 3),
            when=START + timedelta(seconds=rng.randrange(SPAN_S)),
            **properties,
        )
        if index % 10 == 7:  # an interval item: no datetime, a range of up to 40 days
            start = when(item)
            end = start + timedelta(seconds=rng.randrange(40 * 86400))
            item["properties"].update(
                datetime=None, start_datetime=_text(start), end_datetime=_text(end)
            )
        items.append(item)
    return items


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def when(item: dict[str, Any]) -> datetime:
    """The item's `datetime`, the start of an interval item (what datetime_* aggregate)."""
    properties = item["properties"]
    return _moment(properties.get("datetime") or properties["start_datetime"])


def overlaps(item: dict[str, Any], start: datetime | None, end: datetime | None) -> bool:
    """The item's [start, end] (an instant's: [datetime, datetime]) meets [start, end]."""
    properties = item["properties"]
    first = when(item)
    last = _moment(properties["end_datetime"]) if properties.get("end_datetime") else first
    return (end is None or first <= end) and (start is None or last >= start)


ITEMS = generated_items()


async def seed(client: httpx.AsyncClient) -> None:
    for collection in COLLECTIONS:
        assert (await client.post("/collections", json=make_collection(collection))).is_success
        chosen = {item["id"]: item for item in ITEMS if item["collection"] == collection}
        body = {"items": chosen, "method": "insert"}
        response = await client.post(f"/collections/{collection}/bulk_items", json=body)
        assert response.is_success, response.text


# -- brute force ---------------------------------------------------------------------------
BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lon: float, lat: float, precision: int) -> str:
    """The standard geohash: bits alternate longitude/latitude, halving the cell each time."""
    ranges = [[-180.0, 180.0], [-90.0, 90.0]]
    code, value, bits, even = "", 0, 0, True
    while len(code) < precision:
        low, high = ranges[0] if even else ranges[1]
        mid = (low + high) / 2
        coordinate = lon if even else lat
        value <<= 1
        if coordinate > mid:
            value |= 1
            (ranges[0] if even else ranges[1])[0] = mid
        else:
            (ranges[0] if even else ranges[1])[1] = mid
        even, bits = not even, bits + 1
        if bits == 5:
            code, value, bits = code + BASE32[value], 0, 0
    return code


def geotile(lon: float, lat: float, zoom: int) -> str:
    """XYZ tile of a point, latitude clamped to the mercator square, edges kept inside."""
    tiles = 2.0**zoom
    latitude = math.radians(min(max(lat, -85.0511287798066), 85.0511287798066))
    x = (lon + 180.0) / 360.0
    y = (1.0 - math.log(math.tan(latitude) + 1.0 / math.cos(latitude)) / math.pi) / 2.0

    def index(position: float) -> int:
        return int(max(min(math.floor(position * tiles), tiles - 1.0), 0.0))

    return f"{zoom}/{index(x)}/{index(y)}"


def es_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def truncate(value: datetime, interval: str) -> datetime:
    if interval == "year":
        return value.replace(month=1, day=1, hour=0, minute=0, second=0)
    if interval == "month":
        return value.replace(day=1, hour=0, minute=0, second=0)
    return value.replace(hour=0, minute=0, second=0)


def terms(values: list[Any], size: int = 100) -> dict[str, Any]:
    counts = Counter(value for value in values if value is not None)
    ordered = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    buckets = [{"key": k, "data_type": "string", "frequency": n} for k, n in ordered[:size]]
    return {"buckets": buckets, "overflow": sum(n for _, n in ordered[size:])}


def number(item: dict[str, Any], name: str) -> float | None:
    value = item["properties"].get(name)
    return value if isinstance(value, int | float) else None


def expected(matched: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Every aggregation's answer, name -> (value or buckets and overflow)."""
    interval = params.get("datetime_frequency_interval", "month")
    precision = int(params.get("centroid_geohash_grid_frequency_precision", 1))
    zoom = int(params.get("centroid_geotile_grid_frequency_precision", 0))
    times = [when(item) for item in matched]
    centroids = [shape(item["geometry"]).centroid for item in matched]
    months = Counter(truncate(moment, interval) for moment in times)
    cloud = [number(item, "eo:cloud_cover") for item in matched]
    ranges = [(None, 5.0), (5.0, 15.0), (15.0, 40.0), (40.0, None)]
    cloud_buckets = []
    for low, high in ranges:
        inside = [
            v
            for v in cloud
            if v is not None and (low is None or v >= low) and (high is None or v < high)
        ]
        bucket: dict[str, Any] = {
            "key": f"{'*' if low is None else low}-{'*' if high is None else high}",
            "data_type": "numeric",
            "frequency": len(inside),
        }
        bucket.update({k: v for k, v in (("from", low), ("to", high)) if v is not None})
        cloud_buckets.append(bucket)
    elevations = Counter(
        math.floor(v / 5.0) * 5.0
        for v in (number(item, "view:sun_elevation") for item in matched)
        if v is not None
    )
    return {
        "total_count": {"value": len(matched)},
        "datetime_min": {"value": es_time(min(times)) if times else None},
        "datetime_max": {"value": es_time(max(times)) if times else None},
        "datetime_frequency": {
            "buckets": [
                {"key": es_time(k), "data_type": "datetime", "frequency": n}
                for k, n in sorted(months.items())
            ],
            "overflow": 0,
        },
        "collection_frequency": terms([item["collection"] for item in matched]),
        "platform_frequency": terms([item["properties"].get("platform") for item in matched]),
        "grid_code_frequency": terms([item["properties"].get("grid:code") for item in matched]),
        "cloud_cover_frequency": {"buckets": cloud_buckets, "overflow": 0},
        "sun_elevation_frequency": {
            "buckets": [
                {
                    "key": str(float(k)),
                    "data_type": "numeric",
                    "frequency": n,
                    "from": float(k),
                    "to": float(k) + 5.0,
                }
                for k, n in sorted(elevations.items())
            ],
            "overflow": 0,
        },
        "centroid_geohash_grid_frequency": terms(
            [geohash(c.x, c.y, precision) for c in centroids], 10_000
        ),
        "centroid_geotile_grid_frequency": terms(
            [geotile(c.x, c.y, zoom) for c in centroids], 10_000
        ),
    }


ALL = ",".join(
    [
        "total_count",
        "datetime_min",
        "datetime_max",
        "datetime_frequency",
        "collection_frequency",
        "platform_frequency",
        "grid_code_frequency",
        "cloud_cover_frequency",
        "sun_elevation_frequency",
        "centroid_geohash_grid_frequency",
        "centroid_geotile_grid_frequency",
    ]
)
REGION = box(-20.0, -30.0, 60.0, 50.0)
TRIANGLE = {"type": "Polygon", "coordinates": [[[0, 0], [120, 0], [60, 60], [0, 0]]]}


def _cloud_below_30_on_sentinel(item: dict[str, Any]) -> bool:
    cloud = number(item, "eo:cloud_cover")
    return (
        cloud is not None
        and cloud < 30
        and item["properties"].get("platform", "")[:8] == ("sentinel")
    )


Case = tuple[str, dict[str, Any], dict[str, Any], Callable[[dict[str, Any]], bool]]
# (collection scope or "", GET parameters, POST body, the same filter in Python)
CASES: dict[str, Case] = {
    "everything": ("", {}, {}, lambda item: True),
    "bbox": (
        "",
        {"bbox": "-20,-30,60,50"},
        {"bbox": [-20, -30, 60, 50]},
        lambda item: shape(item["geometry"]).intersects(REGION),
    ),
    "intersects": (
        "",
        {"intersects": '{"type":"Polygon","coordinates":[[[0,0],[120,0],[60,60],[0,0]]]}'},
        {"intersects": TRIANGLE},
        lambda item: shape(item["geometry"]).intersects(shape(TRIANGLE)),
    ),
    "datetime and collections": (
        "",
        {"datetime": "2020-03-01T00:00:00Z/2021-08-31T23:59:59Z", "collections": "alpha,gamma"},
        {
            "datetime": "2020-03-01T00:00:00Z/2021-08-31T23:59:59Z",
            "collections": ["alpha", "gamma"],
        },
        lambda item: (
            item["collection"] in ("alpha", "gamma")
            and overlaps(
                item,
                datetime(2020, 3, 1, tzinfo=UTC),
                datetime(2021, 8, 31, 23, 59, 59, tzinfo=UTC),
            )
        ),
    ),
    "partial days, all collections": (
        "",
        {"datetime": "2020-03-01T13:20:00Z/2020-11-30T07:00:00Z"},
        {"datetime": "2020-03-01T13:20:00Z/2020-11-30T07:00:00Z"},
        lambda item: overlaps(
            item, datetime(2020, 3, 1, 13, 20, tzinfo=UTC), datetime(2020, 11, 30, 7, tzinfo=UTC)
        ),
    ),
    "open start, another zone": (
        "",
        {"datetime": "../2020-06-15T12:00:00+02:00", "collections": "gamma"},
        {"datetime": "../2020-06-15T12:00:00+02:00", "collections": ["gamma"]},
        lambda item: (
            item["collection"] == "gamma"
            and overlaps(item, None, datetime(2020, 6, 15, 10, tzinfo=UTC))
        ),
    ),
    "whole days then a partial one": (
        "alpha",
        {"datetime": "2021-02-03T00:00:00Z/2021-02-27T11:00:00Z"},
        {"datetime": "2021-02-03T00:00:00Z/2021-02-27T11:00:00Z"},
        lambda item: (
            item["collection"] == "alpha"
            and overlaps(
                item, datetime(2021, 2, 3, tzinfo=UTC), datetime(2021, 2, 27, 11, tzinfo=UTC)
            )
        ),
    ),
    "cql2 filter": (
        "",
        {"filter": "\"eo:cloud_cover\" < 30 AND platform LIKE 'sentinel%'"},
        {
            "filter": {
                "op": "and",
                "args": [
                    {"op": "<", "args": [{"property": "eo:cloud_cover"}, 30]},
                    {"op": "like", "args": [{"property": "platform"}, "sentinel%"]},
                ],
            },
            "filter-lang": "cql2-json",
        },
        _cloud_below_30_on_sentinel,
    ),
    "query extension and ids": (
        "",
        {
            "query": '{"eo:cloud_cover": {"gte": 50}}',
            "ids": ",".join(f"item-{i:03d}" for i in range(0, 300, 3)),
        },
        {
            "query": {"eo:cloud_cover": {"gte": 50}},
            "ids": [f"item-{i:03d}" for i in range(0, 300, 3)],
        },
        lambda item: int(item["id"][5:]) % 3 == 0 and (number(item, "eo:cloud_cover") or -1) >= 50,
    ),
    "collection alpha, bbox": (
        "alpha",
        {"bbox": "-20,-30,60,50"},
        {"bbox": [-20, -30, 60, 50]},
        lambda item: item["collection"] == "alpha" and shape(item["geometry"]).intersects(REGION),
    ),
    "collection beta, month": (
        "beta",
        {"datetime": "2020-01-01T00:00:00Z/2020-12-31T23:59:59Z"},
        {"datetime": "2020-01-01T00:00:00Z/2020-12-31T23:59:59Z"},
        lambda item: (
            item["collection"] == "beta"
            and overlaps(
                item,
                datetime(2020, 1, 1, tzinfo=UTC),
                datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC),
            )
        ),
    ),
}
PRECISIONS = [
    {},
    {
        "centroid_geohash_grid_frequency_precision": 3,
        "centroid_geotile_grid_frequency_precision": 4,
        "datetime_frequency_interval": "day",
    },
    {
        "centroid_geohash_grid_frequency_precision": 12,
        "centroid_geotile_grid_frequency_precision": 29,
        "datetime_frequency_interval": "year",
    },
]


def _path(scope: str) -> str:
    return f"/collections/{scope}/aggregate" if scope else "/aggregate"


def _by_name(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for aggregation in answer["aggregations"]:
        name = aggregation.pop("name")
        data_type = aggregation.pop("data_type")
        assert data_type in ("integer", "datetime", "frequency_distribution")
        found[name] = aggregation
    return found


@pytest.fixture
async def from_items(settings, database) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database that never reads the per-day counts: every
    aggregation from the items (`CUBESTAC_API__COUNT_BY_DAYS=false`)."""
    api = settings.api.model_copy(update={"count_by_days": False})
    app = create_app(settings.model_copy(update={"api": api}), database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


async def check_case(
    clients: list[httpx.AsyncClient], case: str, method: str, items: list[dict[str, Any]]
) -> None:
    """Every aggregation of the case, at every precision, from each client, equals the
    brute force over `items`."""
    scope, get_params, post_body, keep = CASES[case]
    names = ALL
    matched = [item for item in items if keep(item)]
    for precision in PRECISIONS:
        for client in clients:
            if method == "GET":
                response = await client.get(
                    _path(scope), params={**get_params, **precision, "aggregations": names}
                )
            else:
                body = {**post_body, **precision, "aggregations": names.split(",")}
                response = await client.post(_path(scope), json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["type"] == "AggregationCollection"
            assert [a["name"] for a in answer["aggregations"]] == names.split(",")
            assert _by_name(answer) == expected(matched, precision), (case, precision)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("case", list(CASES))
async def test_every_aggregation_matches_brute_force(
    client: httpx.AsyncClient, from_items: httpx.AsyncClient, case: str, method: str
) -> None:
    """Both ways (the per-day counts where they apply, and the items alone) agree with the
    brute force."""
    await seed(client)
    assert [item for item in ITEMS if CASES[case][3](item)], "each case must match some items"
    await check_case([client, from_items], case, method, ITEMS)


DAY_CASES = [
    "everything",
    "datetime and collections",
    "partial days, all collections",
    "open start, another zone",
    "whole days then a partial one",
]  # and "collection beta, month", before beta is deleted


async def test_after_updates_and_deletes(
    client: httpx.AsyncClient, from_items: httpx.AsyncClient
) -> None:
    """Items moved to other days (one becoming an interval item), items deleted and a
    collection deleted: both ways still agree with the brute force."""
    await seed(client)
    items = {item["id"]: item for item in ITEMS}
    for index in range(0, 60, 4):
        moved = dict(items[f"item-{index:03d}"])
        moved["properties"] = {
            **moved["properties"],
            "datetime": _text(START + timedelta(days=400 + index, hours=index)),
        }
        if index == 8:
            moved["properties"].update(
                datetime=None,
                start_datetime=_text(START + timedelta(days=500)),
                end_datetime=_text(START + timedelta(days=530)),
            )
        path = f"/collections/{moved['collection']}/items/{moved['id']}"
        assert (await client.put(path, json=moved)).status_code == 200
        items[moved["id"]] = moved
    for index in range(100, 160, 3):
        gone = items.pop(f"item-{index:03d}")
        path = f"/collections/{gone['collection']}/items/{gone['id']}"
        assert (await client.delete(path)).status_code in (200, 204)
    deleted = await client.delete("/collections/beta", params={"cascade": "true"})
    assert deleted.status_code in (200, 204), deleted.text
    left = [item for item in items.values() if item["collection"] != "beta"]
    for case in DAY_CASES:
        await check_case([client, from_items], case, "POST", left)


async def test_aggregations_lists_what_the_items_carry(client: httpx.AsyncClient) -> None:
    await seed(client)
    root = (await client.get("/aggregations")).json()
    names = {entry["name"]: entry for entry in root["aggregations"]}
    assert set(ALL.split(",")) <= set(names)
    assert names["grid_code_frequency"]["property"] == "grid:code"
    assert names["cloud_cover_frequency"]["frequency_distribution_data_type"] == "numeric"
    gamma = (await client.get("/collections/gamma/aggregations")).json()
    gamma_names = {entry["name"] for entry in gamma["aggregations"]}
    # gamma's items have neither grid:code nor sun elevations
    assert "grid_code_frequency" not in gamma_names
    assert "sun_elevation_frequency" not in gamma_names
    assert {"platform_frequency", "cloud_cover_frequency", "total_count"} <= gamma_names
    assert {"rel": "collection"}.items() <= next(
        link for link in gamma["links"] if link["rel"] == "collection"
    ).items()


async def test_landing_page_and_collections_link_to_aggregate(client: httpx.AsyncClient) -> None:
    await seed(client)
    landing = (await client.get("/")).json()
    assert "https://api.stacspec.org/v0.3.0/aggregation" in landing["conformsTo"]
    rels = {(link["rel"], link.get("method")): link["href"] for link in landing["links"]}
    assert rels[("aggregate", "GET")] == "http://testserver/aggregate"
    assert rels[("aggregate", "POST")] == "http://testserver/aggregate"
    assert rels[("aggregations", None)] == "http://testserver/aggregations"
    collection = (await client.get("/collections/alpha")).json()
    hrefs = {link["rel"]: link["href"] for link in collection["links"]}
    assert hrefs["aggregate"] == "http://testserver/collections/alpha/aggregate"
    assert hrefs["aggregations"] == "http://testserver/collections/alpha/aggregations"


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/aggregate", {"aggregations": "total_count,nope"}, "valid: total_count"),
        ("/aggregate", {}, "none named"),
        (
            "/aggregate",
            {
                "aggregations": "centroid_geohash_grid_frequency",
                "centroid_geohash_grid_frequency_precision": 0,
            },
            "between 1 and 12",
        ),
        (
            "/aggregate",
            {
                "aggregations": "centroid_geohash_grid_frequency",
                "centroid_geohash_grid_frequency_precision": 13,
            },
            "between 1 and 12",
        ),
        (
            "/aggregate",
            {
                "aggregations": "centroid_geotile_grid_frequency",
                "centroid_geotile_grid_frequency_precision": 30,
            },
            "between 0 and 29",
        ),
        (
            "/aggregate",
            {
                "aggregations": "centroid_geotile_grid_frequency",
                "centroid_geotile_grid_frequency_precision": -1,
            },
            "between 0 and 29",
        ),
        (
            "/aggregate",
            {"aggregations": "total_count", "centroid_geotile_grid_frequency_precision": "x"},
            "integer",
        ),
        (
            "/aggregate",
            {"aggregations": "datetime_frequency", "datetime_frequency_interval": "fortnight"},
            "is not one of year",
        ),
        ("/aggregate", {"aggregations": "total_count", "filter": "nosuch = 1"}, "unknown property"),
        ("/aggregate", {"aggregations": "total_count", "filter": "platform = "}, "filter"),
        ("/aggregate", {"aggregations": "total_count", "bbox": "1,2,3"}, "bbox"),
        (
            "/aggregate",
            {
                "aggregations": "total_count",
                "bbox": "0,0,1,1",
                "intersects": '{"type":"Point","coordinates":[0,0]}',
            },
            "mutually exclusive",
        ),
        ("/aggregate", {"aggregations": "total_count", "datetime": "yesterday"}, "datetime"),
        (
            "/collections/gamma/aggregate",
            {"aggregations": "grid_code_frequency"},
            "not offered by collection 'gamma'",
        ),
        (
            "/collections/alpha/aggregate",
            {"aggregations": "total_count", "collections": "beta"},
            "collections",
        ),
    ],
)
async def test_bad_input_is_a_400(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], says: str
) -> None:
    await seed(client)
    response = await client.get(path, params=params)
    assert response.status_code == 400, response.text
    assert says.lower() in response.json()["description"].lower()


async def test_bad_post_body_is_a_400(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = {
        "aggregations": ["centroid_geohash_grid_frequency"],
        "centroid_geohash_grid_frequency_precision": 99,
    }
    response = await client.post("/aggregate", json=body)
    assert response.status_code == 400
    assert "between 1 and 12" in response.json()["description"]
    response = await client.post("/aggregate", json={"aggregations": "total_count", "bbox": [1, 2]})
    assert response.status_code == 400


async def test_unknown_collection_is_a_404(client: httpx.AsyncClient) -> None:
    await seed(client)
    response = await client.get(
        "/collections/nowhere/aggregate", params={"aggregations": "total_count"}
    )
    assert response.status_code == 404
    assert (await client.get("/collections/nowhere/aggregations")).status_code == 404


async def test_empty_result_has_empty_buckets(client: httpx.AsyncClient) -> None:
    await seed(client)
    params = {"aggregations": ALL, "datetime": "1990-01-01T00:00:00Z/1990-12-31T00:00:00Z"}
    answer = _by_name((await client.get("/aggregate", params=params)).json())
    assert answer == expected([], {})


async def test_an_intersects_over_the_vertex_limit_is_a_400(client: httpx.AsyncClient) -> None:
    ring = [[float(i % 360 - 180), float(i % 170 - 85)] for i in range(20_001)]
    body = {
        "aggregations": ["total_count"],
        "intersects": {"type": "Polygon", "coordinates": [ring]},
    }
    response = await client.post("/aggregate", json=body)
    assert response.status_code == 400
    assert "CUBESTAC_API__MAX_GEOMETRY_VERTICES" in response.json()["description"]


@pytest.mark.parametrize("name", ALL.split(","))
async def test_each_aggregation_alone_matches_brute_force(
    client: httpx.AsyncClient, name: str
) -> None:
    await seed(client)
    params = {"aggregations": name, "bbox": "-20,-30,60,50", "datetime_frequency_interval": "year"}
    answer = _by_name((await client.get("/collections/alpha/aggregate", params=params)).json())
    matched = [
        item
        for item in ITEMS
        if item["collection"] == "alpha" and shape(item["geometry"]).intersects(REGION)
    ]
    assert answer == {name: expected(matched, params)[name]}
