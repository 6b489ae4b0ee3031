"""A served cube item links its EDR queries with templated links that work once filled."""

from __future__ import annotations

from urllib.parse import quote

from shapely.geometry import Polygon

from tests.helpers import make_item

COVERAGE_JSON = "application/prs.coverage+json"


async def test_cube_items_link_their_queries_as_templates(serve, hand_made) -> None:
    cube = hand_made()
    client = await serve(cube)
    item = (await client.get("/collections/coll/items/cube")).json()
    links = [link for link in item["links"] if link.get("type") == COVERAGE_JSON]
    assert [link["rel"] for link in links] == ["data", "data"]
    assert all(link["templated"] is True for link in links)
    position, area = links
    assert set(position["variables"]) == {"lon", "lat"}
    assert set(area["variables"]) == {"polygon"}

    lon, lat = cube.lonlat(20, 20)
    filled = position["href"].replace("{lon}", str(lon)).replace("{lat}", str(lat))
    answer = await client.get(filled)
    assert answer.status_code == 200, answer.text
    assert answer.json()["domain"]["domainType"] == "PointSeries"

    ring = [cube.lonlat(r, c, 0, 0) for r, c in ((2, 2), (2, 6), (6, 6), (6, 2))]
    filled = area["href"].replace("{polygon}", quote(Polygon(ring).wkt))
    answer = await client.get(filled)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cubestac:pixels"] == 16


async def test_other_items_have_no_query_links(serve, hand_made) -> None:
    client = await serve(hand_made())
    assert (
        await client.post("/collections/coll/items", json=make_item("plain", "coll"))
    ).is_success
    item = (await client.get("/collections/coll/items/plain")).json()
    assert not [link for link in item["links"] if link.get("type") == COVERAGE_JSON]
