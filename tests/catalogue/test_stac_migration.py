"""`catalogue.stac_migration` on the real-world corpus (tests/data/real_world/) and on the
bbox and number repairs, with what is served validated against the current schemas."""

from __future__ import annotations

import copy
from pathlib import Path

import pystac
import pytest
from stac_pydantic.collection import validate_bbox_interval

from catalogue.errors import InvalidInputError
from catalogue.serializers import (
    STAC_VERSION,
    collection_to_row,
    item_to_row,
    row_to_collection,
    row_to_item,
)
from catalogue.stac_migration import normalise_collection, normalise_item
from tests.helpers import make_collection, make_item
from tests.real_world import corpus, load, validate_current

BASE = "http://testserver/"


def served(path: Path) -> dict:
    """The corpus document as the catalogue stores and serves it."""
    document = load(path)
    if path.name.startswith("collection-"):
        row = collection_to_row(normalise_collection(document).document)
        return row_to_collection(row["content"], BASE)
    return row_to_item(item_to_row(normalise_item(document).document)["content"], BASE)


def test_the_served_version_is_the_one_pystac_migrates_to() -> None:
    assert pystac.get_stac_version() == STAC_VERSION


@pytest.mark.parametrize("path", corpus("*.json"), ids=lambda path: path.name)
def test_every_accepted_shape_is_served_as_valid_current_stac(path: Path) -> None:
    used = validate_current([served(path)])
    assert any("schemas.stacspec.org/v1.1.0" in uri for uri in used)


def test_the_corpus_declares_the_extensions_it_is_validated_against() -> None:
    used = validate_current([served(path) for path in corpus("*.json")])
    assert {uri.split("/")[3] for uri in used if "stac-extensions" in uri} == {
        "eo", "projection", "raster", "sat", "view"
    }  # fmt: skip


def test_a_0_9_item_is_migrated_with_its_short_extension_names_expanded() -> None:
    result = normalise_item(load("item-0.9.0-landsat.json"))
    item = result.document
    assert result.warnings == ("migrated from STAC 0.9.0 to 1.1.0",)
    assert item["stac_version"] == "1.1.0"
    assert item["stac_extensions"] == [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.2.0/schema.json",
    ]
    # projection v1.2.0 with both: pystac reads proj:code, GDAL 3.6 and stackstac proj:epsg
    assert item["properties"]["proj:code"] == "EPSG:32643"
    assert item["properties"]["proj:epsg"] == 32643
    assert item["assets"]["B2"]["eo:bands"] == [
        {"name": "B2", "common_name": "blue", "center_wavelength": 0.48,
         "full_width_half_max": 0.06}
    ]  # fmt: skip  # 0.9 band indices become the band objects


def test_a_beta_collection_gets_its_type_and_a_current_license() -> None:
    collection = normalise_collection(load("collection-1.0.0-beta.2-sentinel.json")).document
    assert collection["type"] == "Collection"
    assert collection["license"] == "other"  # 1.1.0 retired "proprietary"
    assert collection["item_assets"]["visual"]["roles"] == ["overview"]  # now core


def test_a_beta_collection_that_already_has_a_type_is_migrated_too() -> None:
    document = {**load("collection-1.0.0-beta.2-sentinel.json"), "type": "Collection"}
    result = normalise_collection(document)
    assert result.document["stac_version"] == "1.1.0"
    assert result.document["type"] == "Collection"


def test_the_input_document_is_not_changed() -> None:
    document = load("item-1.0.0-numbers-as-strings.json")
    before = copy.deepcopy(document)
    normalise_item(document)
    assert document == before


def test_a_current_document_is_handed_back_as_it_is() -> None:
    item = make_item("current", proj=None)
    result = normalise_item(item)
    assert result.document is item and result.warnings == ()
    collection = make_collection()
    assert normalise_collection(collection).document is collection


def test_numbers_given_as_strings_become_numbers_where_the_schemas_want_numbers() -> None:
    result = normalise_item(load("item-1.0.0-numbers-as-strings.json"))
    item = result.document
    assert item["bbox"] == [-122.8, 36.6, -120.1, 38.8]
    assert item["properties"]["gsd"] == 30 and item["properties"]["eo:cloud_cover"] == 12.34
    assert item["properties"]["landsat:wrs_path"] == "044"  # a string in its own extension
    assert "bbox: numbers given as strings, stored as numbers" in result.warnings


def test_a_word_where_a_number_belongs_is_left_for_the_caller() -> None:
    item = make_item("cloudy", **{"eo:cloud_cover": "cloudy", "sat:relative_orbit": "8.5"})
    result = normalise_item(item)
    assert result.document["properties"]["eo:cloud_cover"] == "cloudy"
    assert result.document["properties"]["sat:relative_orbit"] == "8.5"  # not an integer
    assert result.warnings == ()


def test_an_unknown_short_extension_name_is_dropped_and_its_fields_kept() -> None:
    item = make_item("odd", **{"tiled:stuff": 1})
    item["stac_extensions"] = ["tiled-assets-v0", "https://example.org/ext/v1.0.0/schema.json"]
    result = normalise_item(item)
    assert result.document["stac_extensions"] == ["https://example.org/ext/v1.0.0/schema.json"]
    assert result.document["properties"]["tiled:stuff"] == 1
    assert any("'tiled-assets-v0'" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("refused/item-0.9.0-band-index-out-of-range.json", "cannot be migrated: IndexError"),
        ("refused/item-version-not-a-version.json", "'latest' is not a STAC version"),
    ],
)
def test_an_item_that_cannot_be_migrated_is_refused_with_the_reason(path, reason) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        normalise_item(load(path))


def test_a_catalog_is_not_migrated_into_a_collection() -> None:
    with pytest.raises(InvalidInputError, match="reads as a STAC catalog"):
        normalise_collection(load("refused/collection-0.9.0-is-a-catalog.json"))


def bboxes(*boxes: list[float]) -> dict:
    extent = {"spatial": {"bbox": list(boxes)}, "temporal": {"interval": [[None, None]]}}
    return make_collection(extent=extent)


def repaired(*boxes: list[float]) -> list[list[float]]:
    document = normalise_collection(bboxes(*boxes)).document
    validate_bbox_interval(document["extent"]["spatial"]["bbox"])  # stac-pydantic's own check
    return document["extent"]["spatial"]["bbox"]


CONUS = [-124.784, 24.744, -66.951, 49.346]
HAWAII = [-156.003, 18.864, -154.809, 20.269]


def test_an_overall_bbox_that_misses_a_cluster_gets_the_union_first() -> None:
    result = normalise_collection(load("collection-1.0.0-conus-hawaii.json"))
    assert result.document["extent"]["spatial"]["bbox"] == [
        [-156.003, 18.864, -66.951, 49.346], CONUS, HAWAII
    ]  # fmt: skip
    assert any("did not contain the others" in warning for warning in result.warnings)
    assert collection_to_row(result.document)["extent_geometry"].startswith("SRID=4326;POLYGON")


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([CONUS], [CONUS]),
        ([[-180, -90, 180, 90], CONUS, HAWAII], [[-180, -90, 180, 90], CONUS, HAWAII]),
        ([[-180, -90, 180, 90], CONUS], [[-180, -90, 180, 90]]),  # a lone sub-bbox
        ([[170, -10, -170, 10], [175, -5, 179, 5], [-179, -5, -175, 5]],
         [[170, -10, -170, 10], [175, -5, 179, 5], [-179, -5, -175, 5]]),  # antimeridian
        ([[175, -5, 179, 5], [-179, -5, -175, 5]],
         [[-179, -5, 179, 5], [175, -5, 179, 5], [-179, -5, -175, 5]]),  # not minimal
        ([[0, 0, 10, 1, 1, 20], [2, 2, -5, 3, 3, 5]],
         [[0, 0, -5, 3, 3, 20], [0, 0, 10, 1, 1, 20], [2, 2, -5, 3, 3, 5]]),  # 3D
        ([["0", "0", "1", "1"]], [[0, 0, 1, 1]]),
    ],
)  # fmt: skip
def test_bbox_lists_are_repaired_into_what_the_1_1_schema_and_stac_pydantic_accept(
    boxes, expected
) -> None:
    assert repaired(*boxes) == expected


def test_a_cluster_across_the_antimeridian_makes_the_union_the_whole_longitude_range() -> None:
    """Geometrically right; stac-pydantic (the API's body model) still refuses a crossing box
    inside a non-crossing one, so through the API such a collection stays a 400."""
    document = normalise_collection(bboxes([0, 0, 1, 1], [170, -10, -170, 10])).document
    assert document["extent"]["spatial"]["bbox"][0] == [-180.0, -10, 180.0, 10]


def test_a_malformed_bbox_list_is_left_for_validation_to_report() -> None:
    document = bboxes([0, 0, 1], [0, 0, 2, 2])
    assert normalise_collection(document).document is document
