"""`catalogue.storage_extension`: the storage extension v2.0.0 fields of S3 assets, checked
against the extension's published schema (mirrored in tests/data/schemas, with the platform
schemas it `$ref`s)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from catalogue.storage_extension import (
    STORAGE_EXTENSION,
    S3Access,
    add_storage_fields,
    drop_storage_refs,
    environment_region,
)
from tests.stac_schemas import validate_offline

MOTO = S3Access(endpoint_url="http://127.0.0.1:5000", anonymous=True)


def item(**assets: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": "cube",
        "geometry": {"type": "Point", "coordinates": [5.0, 50.0]},
        "bbox": [5.0, 50.0, 5.0, 50.0],
        "properties": {"datetime": "2020-01-01T00:00:00Z"},
        "assets": {key: {"href": href, "roles": ["data"]} for key, href in assets.items()},
        "links": [],
    }


def collection(**assets: str) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": "cubes",
        "description": "cubes",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [[5.0, 50.0, 6.0, 51.0]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "assets": {key: {"href": href, "roles": ["data"]} for key, href in assets.items()},
        "links": [],
    }


def test_an_aws_bucket_gets_the_aws_platform_and_region() -> None:
    access = S3Access(region="eu-central-1", requester_pays=True)
    document = add_storage_fields(item(zarr="s3://forest-cubes/c/v.zarr/0"), access)
    assert document["properties"]["storage:schemes"] == {
        "aws-s3-forest-cubes": {
            "type": "aws-s3",
            "platform": "https://{bucket}.s3.{region}.amazonaws.com",
            "bucket": "forest-cubes",
            "region": "eu-central-1",
            "requester_pays": True,
            "anonymous": False,
        }
    }
    assert document["assets"]["zarr"]["storage:refs"] == ["aws-s3-forest-cubes"]
    assert STORAGE_EXTENSION in validate_offline(document)


def test_aws_without_a_region_states_the_aws_default() -> None:
    document = add_storage_fields(item(zarr="s3://forest-cubes/c.zarr"), S3Access())
    assert document["properties"]["storage:schemes"]["aws-s3-forest-cubes"]["region"] == (
        "us-east-1"
    )


def test_another_s3_store_is_named_by_its_endpoint() -> None:
    document = add_storage_fields(
        item(zarr="s3://cubes/root/c.zarr/0", levels="s3://cubes/root/c.zarr"), MOTO
    )
    scheme = document["properties"]["storage:schemes"]["custom-s3-cubes"]
    assert scheme == {
        "type": "custom-s3",
        "platform": "http://127.0.0.1:5000",
        "bucket": "cubes",
        "requester_pays": False,
        "anonymous": True,
    }
    assert {asset["storage:refs"][0] for asset in document["assets"].values()} == {
        "custom-s3-cubes"
    }
    assert STORAGE_EXTENSION in validate_offline(document)


def test_assets_in_two_buckets_refer_to_two_schemes() -> None:
    document = add_storage_fields(item(a="s3://one/a.nc", b="s3://two/b.nc"), MOTO)
    assert set(document["properties"]["storage:schemes"]) == {"custom-s3-one", "custom-s3-two"}
    assert document["assets"]["b"]["storage:refs"] == ["custom-s3-two"]
    validate_offline(document)


@pytest.mark.parametrize("href", ["/srv/cubes/c.zarr", "https://example.org/c.zarr", "c.zarr"])
def test_assets_not_on_s3_are_left_alone(href: str) -> None:
    document = item(zarr=href)
    assert add_storage_fields(copy.deepcopy(document), MOTO) == document


def test_only_the_chosen_assets_are_given_refs() -> None:
    document = add_storage_fields(item(a="s3://b/a.zarr", b="s3://b/b.zarr"), MOTO, ["a"])
    assert "storage:refs" in document["assets"]["a"]
    assert "storage:refs" not in document["assets"]["b"]


def test_a_collection_holds_its_schemes_at_the_top_level() -> None:
    """Where xpystac's Icechunk reader looks for them (`collection.extra_fields`)."""
    document = add_storage_fields(collection(store="s3://cubes/c.icechunk"), MOTO)
    assert document["storage:schemes"]["custom-s3-cubes"]["anonymous"] is True
    assert document["assets"]["store"]["storage:refs"] == ["custom-s3-cubes"]
    assert STORAGE_EXTENSION in validate_offline(document)


def test_a_second_call_keeps_existing_schemes_and_declares_once() -> None:
    document = add_storage_fields(item(a="s3://one/a.zarr"), MOTO)
    document["assets"]["b"] = {"href": "s3://two/b.zarr"}
    add_storage_fields(document, MOTO, ["b"])
    assert set(document["properties"]["storage:schemes"]) == {"custom-s3-one", "custom-s3-two"}
    assert document["stac_extensions"].count(STORAGE_EXTENSION) == 1


def test_options_give_endpoint_anonymity_region_and_never_credentials() -> None:
    options = {
        "endpoint_url": "https://minio.example.org",
        "anon": True,
        "requester_pays": True,
        "key": "AKIA-secret",
        "secret": "very-secret",
        "client_kwargs": {"region_name": "eu-west-3"},
    }
    access = S3Access.from_options(options, region="us-west-2")
    assert access == S3Access("https://minio.example.org", "eu-west-3", True, True)
    scheme = add_storage_fields(item(a="s3://b/a.tif"), access)["properties"]["storage:schemes"]
    assert "secret" not in repr(scheme) and "AKIA" not in repr(scheme)
    assert S3Access.from_options({}, region="us-west-2") == S3Access(region="us-west-2")


def test_the_region_comes_from_the_environment_as_boto_reads_it(monkeypatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert environment_region() is None
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert environment_region() == "eu-north-1"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert environment_region() == "ap-south-1"


def test_swapping_an_href_for_http_drops_its_refs_then_unused_schemes() -> None:
    document = add_storage_fields(item(a="s3://one/a.zarr", b="s3://two/b.zarr"), MOTO)
    drop_storage_refs(document, document["assets"]["a"])
    assert set(document["properties"]["storage:schemes"]) == {"custom-s3-two"}
    validate_offline(document)
    drop_storage_refs(document, document["assets"]["b"])
    assert "storage:schemes" not in document["properties"]
    assert STORAGE_EXTENSION not in document["stac_extensions"]
    validate_offline(document)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["properties"].pop("storage:schemes"),  # declared, so required
        lambda d: d["properties"]["storage:schemes"]["custom-s3-b"].pop("platform"),
        lambda d: d["assets"]["a"].update({"storage:refs": "custom-s3-b"}),  # not a list
        lambda d: d["properties"].update({"storage:platform": "AWS"}),  # v1 field
    ],
)
def test_the_mirrored_schema_catches_broken_storage_fields(breakage) -> None:
    document = add_storage_fields(item(a="s3://b/a.zarr"), MOTO)
    breakage(document)
    with pytest.raises(jsonschema.ValidationError):
        validate_offline(document)


def test_the_aws_platform_schema_is_applied() -> None:
    """The `./platforms/aws-s3.json` the schema `$ref`s is mirrored and checked too."""
    document = add_storage_fields(item(a="s3://forest/a.zarr"), S3Access(region="eu-west-1"))
    document["properties"]["storage:schemes"]["aws-s3-forest"]["platform"] = "https://s3.aws"
    with pytest.raises(jsonschema.ValidationError):
        validate_offline(document)
