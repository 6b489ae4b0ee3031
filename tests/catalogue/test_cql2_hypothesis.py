"""Random valid CQL2-JSON filters over the conformance test's items, through the API
(POST /search): never a 500, always a 200, and the items returned are those the
independent evaluator (cql2-rs, as set up in test_cql2_conformance.py) selects.

The grammar draws from every operator class, nested with AND/OR/NOT, and stays where the
evaluator's semantics are ours (see `Case.why` there for where they knowingly differ:
DATE literals, BETWEEN or CASEI on mixed types, division by zero): BETWEEN only on
properties that hold numbers alone, no DATE literals, no arithmetic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import create_app
from tests.catalogue.cql2_catalogue import COLLECTIONS
from tests.catalogue.test_cql2_conformance import Case, Seeded, expected_ids, seeded
from tests.conftest import SavepointDatabase
from tests.helpers import make_settings

__all__ = ["seeded"]  # the conformance test's seeded catalogue, re-used as a fixture here

EXAMPLES = 150

# properties and the literals that make sense against them (some hold other types too, on
# some items: a string "12" for eo:cloud_cover, "10" for gsd; that is part of the test)
NUMERIC = ["eo:cloud_cover", "gsd", "view:sun_elevation", "view:off_nadir", "sat:relative_orbit"]
NUMBERS_ONLY = ["view:off_nadir", "sat:relative_orbit"]  # for BETWEEN (see the docstring)
TEXT = ["platform", "title", "id", "collection", "constellation"]
WORDS = ["sentinel-2a", "sentinel-2b", "landsat-8", "terra", "aqua", "s2-03", "md-01"]
DATES = [f"2021-{month:02d}-{day:02d}T{hour:02d}:00:00Z"
         for month, day, hour in [(5, 25, 0), (6, 1, 0), (6, 3, 10), (6, 5, 0), (6, 8, 0),
                                  (6, 10, 12), (6, 20, 0), (7, 5, 10)]]  # fmt: skip
TAGS = ["urban", "coast", "alpine", "oli", "tirs", "monthly", "canyon"]


def prop(name: str) -> dict[str, str]:
    return {"property": name}


numbers = st.sampled_from([0, 5, 10, 12.5, 20, 30, 49.999, 50, 51, 100]).map(float)
comparison_op = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])


@st.composite
def numeric_comparison(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "op": draw(comparison_op),
        "args": [prop(draw(st.sampled_from(NUMERIC))), draw(numbers)],
    }


@st.composite
def text_comparison(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(TEXT))
    op = draw(st.sampled_from(["=", "<>", "like", "in"]))
    if op == "like":
        pattern = draw(st.sampled_from(["sentinel%", "%8", "s2-0_", "%a%", "Composite%", "_a%"]))
        return {"op": "like", "args": [prop(name), pattern]}
    if op == "in":
        values = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True))
        return {"op": "in", "args": [prop(name), values]}
    return {"op": op, "args": [prop(name), draw(st.sampled_from(WORDS))]}


@st.composite
def between(draw: st.DrawFn) -> dict[str, Any]:
    low, high = sorted([draw(numbers), draw(numbers)])
    return {"op": "between", "args": [prop(draw(st.sampled_from(NUMBERS_ONLY))), low, high]}


@st.composite
def temporal(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["t_after", "t_before", "t_during", "t_intersects", "t_disjoint",
                               "t_contains", "t_overlaps", "t_meets", "t_equals"]))  # fmt: skip
    if draw(st.booleans()):
        start, end = sorted(draw(st.lists(st.sampled_from(DATES), min_size=2, max_size=2)))
        literal: dict[str, Any] = {"interval": [start, end]}
    else:
        literal = {"timestamp": draw(st.sampled_from(DATES))}
    return {"op": op, "args": [prop("datetime"), literal]}


@st.composite
def timestamp_comparison(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(["datetime", "start_datetime", "end_datetime"]))
    literal = {"timestamp": draw(st.sampled_from(DATES))}
    return {"op": draw(comparison_op), "args": [prop(name), literal]}


@st.composite
def spatial(draw: st.DrawFn) -> dict[str, Any]:
    west = draw(st.integers(0, 9))
    south = draw(st.integers(40, 49))
    width, height = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ring = [[west, south], [west + width, south], [west + width, south + height],
            [west, south + height], [west, south]]  # fmt: skip
    op = draw(st.sampled_from(["s_intersects", "s_within", "s_contains", "s_disjoint",
                               "s_overlaps", "s_touches"]))  # fmt: skip
    return {"op": op, "args": [prop("geometry"), {"type": "Polygon", "coordinates": [ring]}]}


@st.composite
def array(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["a_contains", "a_containedby", "a_overlaps", "a_equals"]))
    values = draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True))
    return {"op": op, "args": [prop("tags"), values]}


leaf = st.one_of(
    numeric_comparison(),
    text_comparison(),
    between(),
    temporal(),
    timestamp_comparison(),
    spatial(),
    array(),
    st.sampled_from(["processed", "eo:cloud_cover", "title"]).map(
        lambda name: {"op": "isNull", "args": [prop(name)]}
    ),
    st.booleans().map(lambda value: {"op": "=", "args": [prop("processed"), value]}),
)


def combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), st.lists(children, min_size=1, max_size=3)).map(
            lambda pair: {"op": pair[0], "args": pair[1]}
        ),
        children.map(lambda child: {"op": "not", "args": [child]}),
    )


filters = st.recursive(leaf, combine, max_leaves=6)


@pytest.fixture(scope="module")
async def api(seeded: Seeded, session_db_url) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(session_db_url), database=SavepointDatabase(seeded.conn))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


@given(tree=filters)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_random_filters_agree_with_the_independent_evaluator(
    api: httpx.AsyncClient, tree: dict[str, Any]
) -> None:
    body = {"collections": list(COLLECTIONS), "filter": tree, "limit": 100}
    response = await api.post("/search", json=body)
    assert response.status_code == 200, response.text
    got = {feature["id"] for feature in response.json()["features"]}
    assert got == expected_ids(Case("hypothesis", tree))


def test_the_generated_filters_are_discriminating() -> None:
    """Most drawn filters select a proper, non-empty subset of the items (agreeing on
    "nothing" or "everything" would prove little)."""
    from tests.catalogue.test_cql2_conformance import ALL_IDS

    sizes: list[int] = []

    @given(tree=filters)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
    def draw(tree: dict[str, Any]) -> None:
        sizes.append(len(expected_ids(Case("hypothesis", tree))))

    draw()
    proper = [size for size in sizes if 0 < size < len(ALL_IDS)]
    assert len(sizes) >= EXAMPLES * 0.9 and len(proper) >= 0.6 * len(sizes)
