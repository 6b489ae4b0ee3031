"""`/area`: per-time-step mean, min, max and valid count over the pixels whose centres a
polygon contains, checked against a brute-force numpy computation over the same pixels."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import shapely
import xarray as xr
from covjson_pydantic.coverage import Coverage
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from tests.api.edr_cubes import CRS_CODE, HandMadeCube, item_for

URL = "/collections/coll/items/cube/area"


def polygon(cube: HandMadeCube, corners: list[tuple[int, int]]) -> Polygon:
    """A WGS 84 polygon through pixel corners (row, col): pixel centres are half a pixel
    from any edge, so which centres it contains is unambiguous."""
    return Polygon([cube.lonlat(r, c, 0.0, 0.0) for r, c in corners])


def brute_force(cube: HandMadeCube, shape: Polygon | MultiPolygon, name: str) -> dict:
    """Stats of `name` over the pixels whose centres (in lon/lat) `shape` contains, read
    with xarray from the store, with the nodata of the item masked."""
    dataset = xr.open_zarr(item_for(cube)["assets"]["zarr"]["href"], consolidated=True)
    xs, ys = np.meshgrid(dataset["x"].values, dataset["y"].values)
    lon, lat = Transformer.from_crs(CRS_CODE, "EPSG:4326", always_xy=True).transform(xs, ys)
    inside = shapely.contains_xy(shape, lon, lat)
    variable = dataset[name].isel(member=0) if "member" in dataset[name].dims else dataset[name]
    values = variable.values.astype("float64")  # decoded: nodata is NaN
    picked = values[:, inside]  # (time, pixels)
    valid = ~np.isnan(picked)
    rows = [row[ok] for row, ok in zip(picked, valid, strict=True)]
    return {
        "pixels": int(inside.sum()),
        "count": valid.sum(axis=1),
        **{
            statistic: np.array([getattr(r, statistic)() if r.size else np.nan for r in rows])
            for statistic in ("mean", "min", "max")
        },
    }


def answered(body: dict, key: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in body["ranges"][key]["values"]])


L_SHAPE = [(1, 1), (1, 30), (12, 30), (12, 14), (25, 14), (25, 1)]


@pytest.mark.parametrize(
    ("options", "layout"),
    [({}, None), ({"timeseries": False}, "map"), ({"legacy": True}, "map")],
    ids=["with-timeseries-layout", "map-layout", "legacy-store"],
)
async def test_stats_equal_a_brute_force_computation(serve, hand_made, options, layout):
    cube = hand_made(**options)
    client = await serve(cube)
    shape = polygon(cube, L_SHAPE)
    response = await client.get(URL, params={"coords": shape.wkt, "parameter-name": "ndvi,classes"})
    assert response.status_code == 200, response.text
    if layout is not None:
        assert response.headers["cubestac-layout"] == layout
    body = response.json()
    Coverage.model_validate_json(response.content)
    assert body["domain"]["domainType"] == "PointSeries"
    assert body["domain"]["axes"]["x"]["values"] == [pytest.approx(shape.centroid.x)]
    for name in ("ndvi", "classes"):
        truth = brute_force(cube, shape, name)
        assert body["cubestac:pixels"] == truth["pixels"] == 11 * 29 + 13 * 13
        np.testing.assert_array_equal(answered(body, f"{name}_count"), truth["count"])
        for statistic in ("min", "max"):
            np.testing.assert_array_equal(
                answered(body, f"{name}_{statistic}").astype("float32"),
                truth[statistic].astype("float32"),
            )
        np.testing.assert_allclose(answered(body, f"{name}_mean"), truth["mean"], rtol=1e-12)


async def test_nodata_is_left_out_and_counted(serve, hand_made) -> None:
    """The polygon covers the NaN corner and the fill of `classes`; step 3 has no data."""
    cube = hand_made()
    client = await serve(cube)
    shape = polygon(cube, [(0, 0), (0, 12), (12, 12), (12, 0)])
    response = await client.get(URL, params={"coords": shape.wkt, "f": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 30
    first, third = rows[0], rows[2]
    assert first["pixels"] == "144"
    assert first["ndvi_count"] == str(144 - 12 - 1)  # the 3 x 4 corner and pixel (10, 10)
    assert first["classes_count"] == str(144 - 9)  # the 3 x 3 fill
    assert third["ndvi_count"] == "0"
    assert third["ndvi_mean"] == third["ndvi_min"] == third["ndvi_max"] == ""
    assert list(rows[0])[:6] == [
        "datetime",
        "pixels",
        "agb_mean",
        "agb_min",
        "agb_max",
        "agb_count",
    ]


async def test_both_layouts_answer_the_same(serve, hand_made) -> None:
    with_series = hand_made()
    map_only = hand_made(timeseries=False)
    shape = polygon(with_series, L_SHAPE)
    lon, lat = with_series.lonlat(20, 7)
    answers = []
    for cube in (with_series, map_only):
        client = await serve(cube)
        area = await client.get(URL, params={"coords": shape.wkt, "datetime": "2020-01-02/.."})
        point = await client.get(
            "/collections/coll/items/cube/position", params={"coords": f"POINT({lon} {lat})"}
        )
        answers.append((area.content, point.content, point.headers["cubestac-layout"]))
    assert answers[0][:2] == answers[1][:2]
    assert [a[2] for a in answers] == ["timeseries", "map"]


async def test_a_multipolygon_covers_both_parts(serve, hand_made) -> None:
    cube = hand_made()
    client = await serve(cube)
    parts = MultiPolygon(
        [
            polygon(cube, [(0, 0), (0, 5), (5, 5), (5, 0)]),
            polygon(cube, [(30, 30), (30, 40), (35, 40), (35, 30)]),
        ]
    )
    response = await client.get(URL, params={"coords": parts.wkt, "parameter-name": "agb"})
    assert response.status_code == 200, response.text
    body = response.json()
    truth = brute_force(cube, parts, "agb")
    assert body["cubestac:pixels"] == truth["pixels"] == 25 + 50
    np.testing.assert_allclose(answered(body, "agb_mean"), truth["mean"], rtol=1e-12)


@pytest.mark.parametrize(
    ("corners", "datetime", "layout"),
    [
        ([(2, 2), (2, 6), (6, 6), (6, 2)], None, "timeseries"),  # 4 x 4 px, 30 steps
        ([(0, 0), (0, 48), (40, 48), (40, 0)], "2020-01-04", "map"),  # the grid, 1 step
    ],
)
async def test_an_area_reads_the_layout_with_fewer_bytes(
    serve, hand_made, corners, datetime, layout
):
    """A small square over every step: one time-series chunk of 30 x 8 x 8 (7.7 KB) against
    30 map chunks of 16 x 16 (31 KB). The whole grid at one step: 9 map chunks (9 KB)
    against 30 time-series chunks (230 KB)."""
    cube = hand_made()
    client = await serve(cube)
    params = {"coords": polygon(cube, corners).wkt, "parameter-name": "ndvi"}
    if datetime:
        params["datetime"] = datetime
    response = await client.get(URL, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cubestac-layout"] == layout
