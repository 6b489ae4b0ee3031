"""The id rules (catalogue.ids: one id; ids unique in a CONFIG section) and the JSON codec
for big integers (catalogue.json_codec)."""

from __future__ import annotations

import json
from urllib.parse import unquote

import httpx
import pytest
from pydantic import ValidationError

from catalogue import json_codec
from catalogue.errors import InvalidInputError
from catalogue.ids import MAX_ID_BYTES, check_id, id_problem
from catalogue.serializers import item_links
from cubes.spec import CubesConfig
from ingest.config import parse_sources


@pytest.mark.parametrize(
    "value",
    [".", "..", "a/b", "/", "a\\b", "a\x00b", "a\nb", "a\x7fb", "a\x85b",
     "a\ud800b", "", None, 3, ["x"], "x" * (MAX_ID_BYTES + 1)],
)  # fmt: skip
def test_ids_that_break_a_url_path_are_refused(value: object) -> None:
    assert id_problem(value) is not None
    with pytest.raises(InvalidInputError, match="item id"):
        check_id(value, "item")


@pytest.mark.parametrize(
    "value",
    ["S2A_MSIL2A_20210701T102021_N0301_R065_T32UNE_20210701T134047", "...", ".a", "a..b",
     "with space", "a?b#c", "50%", "%2E%2E", "urn:x:y", "ünïcødé", "x" * MAX_ID_BYTES],
)  # fmt: skip
def test_other_ids_are_kept_and_survive_a_url_path(value: str) -> None:
    """Kept ids, percent-encoded as the links encode them, come back as one segment."""
    assert check_id(value, "item") == value
    href = item_links("http://h/", "c", value)[0]["href"]
    url = httpx.URL(href)  # what a client sends: dot-segments removed, encoding kept
    assert url.raw_path.decode().count("/") == 4
    assert unquote(url.raw_path.decode().rsplit("/", 1)[1]) == value


@pytest.mark.parametrize("value", [2**64 + 5, -(2**63) - 1, 10**300, [1, {"a": 2**70}]])
def test_the_codec_keeps_big_integers_exact(value: object) -> None:
    text = json_codec.dumps({"n": value})
    assert json_codec.loads(text) == {"n": value}
    assert json_codec.loads(text.encode()) == {"n": value}
    assert json.loads(json_codec.dumps_bytes(value)) == value


def test_the_codec_is_orjson_for_ordinary_documents() -> None:
    document = {"n": 2**64 - 1, "m": -(2**63), "x": 1.5, "s": "ü"}
    assert (
        json_codec.dumps(document)
        == '{"n":18446744073709551615,"m":-9223372036854775808,"x":1.5,"s":"ü"}'
    )  # noqa: E501
    assert json_codec.loads(json_codec.dumps(document)) == document


def test_a_deeply_nested_document_is_a_value_error_on_either_path() -> None:
    for digits in ("1", "1" * 19):
        with pytest.raises(ValueError):
            json_codec.loads("[" * 100_000 + digits + "]" * 100_000)


def test_big_integer_finds_one_anywhere() -> None:
    assert json_codec.big_integer({"a": [1, {"b": 2**64}]}) == 2**64
    assert json_codec.big_integer({"a": [1, 2**64 - 1, -(2**63), 1.0e30]}) is None


SOURCE = {"kind": "stac-static", "url": "https://example.org/catalog.json"}
CUBE = {
    "collection": "c",
    "grid": {"crs": "EPSG:3035", "bbox": [0, 0, 300, 300], "resolution": 30},
    "inputs": [{"collection": "c"}],
}


@pytest.mark.parametrize(
    ("validate", "section", "entry", "what"),
    [
        (lambda config: parse_sources(config), "sources", SOURCE, "source"),
        (lambda config: CubesConfig.model_validate(config), "cubes", CUBE, "cube"),
    ],
    ids=["sources", "cubes"],
)
def test_config_sections_refuse_a_repeated_id_alike(validate, section, entry, what) -> None:
    entries = [{**entry, "id": name} for name in ("a", "b", "b", "a")]
    with pytest.raises(ValidationError, match=f"{what} id 'b' is used more than once"):
        validate({section: entries})
    validate({section: entries[:2]})  # distinct ids pass
