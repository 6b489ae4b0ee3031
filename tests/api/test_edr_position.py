"""`/position`: the values of the cube pixel holding a point, for every time step, as
CoverageJSON and CSV, from either layout, compared with what xarray reads from the store."""

from __future__ import annotations

import csv
import io
import threading

import numpy as np
import pytest
import xarray as xr
from covjson_pydantic.coverage import Coverage
from pyproj import Transformer

from api.edr import answers
from tests.api.edr_cubes import CRS_CODE, HandMadeCube, item_for

URL = "/collections/coll/items/cube/position"


def expected(cube: HandMadeCube, lon: float, lat: float, name: str) -> xr.DataArray:
    """What xarray reads at the pixel nearest to the point, transformed to the cube's CRS."""
    x, y = Transformer.from_crs("EPSG:4326", CRS_CODE, always_xy=True).transform(lon, lat)
    href = item_for(cube)["assets"]["zarr"]["href"]
    return xr.open_zarr(href, consolidated=True).sel(x=x, y=y, method="nearest")[name]


def values(body: dict, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in body["ranges"][name]["values"]])


@pytest.mark.parametrize(
    ("layout", "options"),
    [
        ("timeseries", {}),
        ("map", {"timeseries": False}),
        ("map", {"legacy": True}),
    ],
    ids=["timeseries-layout", "map-layout", "legacy-store"],
)
@pytest.mark.parametrize(("row", "col", "dx", "dy"), [(12, 20, 0.5, 0.5), (39, 0, 0.9, 0.1)])
async def test_values_are_the_cube_pixel_at_every_step(
    serve, hand_made, layout, options, row, col, dx, dy
) -> None:
    cube = hand_made(**options)
    client = await serve(cube)
    lon, lat = cube.lonlat(row, col, dx, dy)
    response = await client.get(
        URL, params={"coords": f"POINT({lon} {lat})", "parameter-name": "ndvi,classes"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/prs.coverage+json"
    assert response.headers["cubestac-layout"] == layout
    body = response.json()
    for name in ("ndvi", "classes"):
        truth = expected(cube, lon, lat, name)
        np.testing.assert_array_equal(values(body, name).astype(truth.dtype), truth.values)
        assert len(body["ranges"][name]["values"]) == cube.dataset.sizes["time"]
    assert body["cubestac:pixel"] == {"row": row, "col": col, "crs": "EPSG:3035"}


async def test_the_answer_is_coveragejson_point_series(serve, hand_made) -> None:
    cube = hand_made()
    client = await serve(cube)
    lon, lat = cube.lonlat(10, 10)  # ndvi is nodata there at every step
    response = await client.get(URL, params={"coords": f"POINT({lon} {lat})"})
    body = response.json()
    coverage = Coverage.model_validate_json(response.content)
    assert coverage.domain.domainType.value == "PointSeries"
    assert body["domain"]["axes"]["t"]["values"][:2] == [
        "2020-01-01T00:00:00Z",
        "2020-01-02T00:00:00Z",
    ]
    centre = cube.lonlat(10, 10)
    assert body["domain"]["axes"]["x"]["values"] == [pytest.approx(centre[0])]
    assert body["domain"]["axes"]["y"]["values"] == [pytest.approx(centre[1])]
    assert sorted(body["parameters"]) == ["agb", "classes", "ndvi"]  # all when not named
    assert body["ranges"]["ndvi"]["values"] == [None] * 30
    assert body["ranges"]["ndvi"]["axisNames"] == ["t"]
    assert body["parameters"]["agb"]["unit"]["symbol"] == "Mg/ha"
    assert body["parameters"]["ndvi"]["observedProperty"]["label"] == {"en": "vegetation index"}
    classes = body["parameters"]["classes"]
    assert classes["categoryEncoding"] == {
        "classes:forest": 1,
        "classes:grass": 2,
        "classes:water": 3,
    }
    assert body["ranges"]["classes"]["dataType"] == "integer"
    assert body["cubestac:selection"] == {"member": "m0"}


@pytest.mark.parametrize(
    ("datetime", "first", "count"),
    [
        ("2020-01-05T00:00:00Z/2020-01-07T00:00:00Z", "2020-01-05T00:00:00Z", 3),
        ("2020-01-05", "2020-01-05T00:00:00Z", 1),
        ("2020-01-10T00:00:00Z", "2020-01-10T00:00:00Z", 1),
        ("../2020-01-03T12:00:00Z", "2020-01-01T00:00:00Z", 3),
        ("2020-01-29T00:00:00Z/..", "2020-01-29T00:00:00Z", 2),
        ("2019-06-01/2020-01-02", "2020-01-01T00:00:00Z", 2),
    ],
)
async def test_datetime_selects_the_steps(serve, hand_made, datetime, first, count) -> None:
    cube = hand_made()
    client = await serve(cube)
    lon, lat = cube.lonlat(20, 30)
    response = await client.get(
        URL,
        params={"coords": f"POINT({lon} {lat})", "parameter-name": "ndvi", "datetime": datetime},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    times = body["domain"]["axes"]["t"]["values"]
    assert (times[0], len(times)) == (first, count)
    start = int(np.flatnonzero(cube.dataset["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ") == first)[0])
    truth = expected(cube, lon, lat, "ndvi").values[start : start + count]
    np.testing.assert_array_equal(values(body, "ndvi").astype("float32"), truth)


@pytest.mark.parametrize("how", ["f", "accept"])
async def test_csv_has_one_row_per_step(serve, hand_made, how) -> None:
    cube = hand_made()
    client = await serve(cube)
    lon, lat = cube.lonlat(20, 30)
    params = {"coords": f"POINT({lon} {lat})", "parameter-name": "ndvi,agb"}
    if how == "f":
        response = await client.get(URL, params={**params, "f": "csv"})
    else:
        response = await client.get(URL, params=params, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["datetime", "ndvi", "agb"]
    assert len(rows) == 31
    assert rows[1][0] == "2020-01-01T00:00:00Z"
    assert rows[3][1] == ""  # the third step has no data
    ndvi = expected(cube, lon, lat, "ndvi").values
    assert np.float32(rows[1][1]) == ndvi[0]
    assert float(rows[1][1]) == float(str(ndvi[0]))  # written as short as float32 allows


@pytest.mark.parametrize(("member", "index"), [(None, 0), ("m1", 1), ("1", 1)])
async def test_other_dimensions_are_picked_by_name(serve, hand_made, member, index) -> None:
    cube = hand_made()
    client = await serve(cube)
    lon, lat = cube.lonlat(7, 9)
    params = {"coords": f"POINT({lon} {lat})", "parameter-name": "agb"}
    if member is not None:
        params["member"] = member
    body = (await client.get(URL, params=params)).json()
    truth = expected(cube, lon, lat, "agb").isel(member=index).values
    np.testing.assert_array_equal(values(body, "agb").astype("float32"), truth)
    assert body["cubestac:selection"] == {"member": f"m{index}"}


async def test_a_cube_without_time_answers_one_value(serve, hand_made) -> None:
    cube = hand_made(timeless=True)
    client = await serve(cube)
    lon, lat = cube.lonlat(20, 30)
    response = await client.get(URL, params={"coords": f"POINT({lon} {lat})"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["domain"]["domainType"] == "Point"
    assert "t" not in body["domain"]["axes"]
    truth = expected(cube, lon, lat, "ndvi").values
    assert np.float32(body["ranges"]["ndvi"]["values"][0]) == truth
    csv_text = (await client.get(URL, params={"coords": f"POINT({lon} {lat})", "f": "csv"})).text
    assert len(csv_text.splitlines()) == 2


@pytest.mark.parametrize("query", ["position", "area"])
async def test_chunks_are_read_off_the_event_loop(serve, hand_made, monkeypatch, query) -> None:
    """The reads run in a worker thread: the test (and the app under ASGITransport) runs on
    the event loop's thread, the read must not."""
    readers: list[int] = []
    name = "read_point" if query == "position" else "read_area"
    original = getattr(answers, name)

    def spy(*args, **kwargs):
        readers.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(answers, name, spy)
    cube = hand_made()
    client = await serve(cube)
    lon, lat = cube.lonlat(20, 20)
    d = 0.001
    coords = (
        f"POINT({lon} {lat})"
        if query == "position"
        else f"POLYGON(({lon} {lat}, {lon + d} {lat}, {lon + d} {lat + d}, {lon} {lat}))"
    )
    response = await client.get(f"/collections/coll/items/cube/{query}", params={"coords": coords})
    assert response.status_code == 200, response.text
    assert readers and threading.get_ident() not in readers
