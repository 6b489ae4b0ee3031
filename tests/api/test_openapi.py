"""`/api` is a valid OpenAPI document, checked with openapi-spec-validator as a client would:
the validator chosen by the version the response's media type and the landing page's
`service-desc` link declare, and by the document's own `openapi` field."""

from __future__ import annotations

import httpx
import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator, validate
from sqlalchemy import URL

from api import create_app
from tests.conftest import SavepointDatabase
from tests.helpers import make_settings

VALIDATORS = {"3.0": OpenAPIV30SpecValidator, "3.1": OpenAPIV31SpecValidator}


def declared_version(media_type: str) -> str:
    parameters = dict(part.strip().split("=", 1) for part in media_type.split(";")[1:])
    return parameters["version"]


@pytest.mark.parametrize("writable", [True, False], ids=["with-transactions", "read-only"])
async def test_openapi_document_validates_as_the_version_it_declares(
    session_db_url: URL, database: SavepointDatabase, writable: bool
) -> None:
    settings = make_settings(session_db_url, **({} if writable else {"api_key": None}))
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        landing = (await http.get("/")).json()
        response = await http.get("/api")
    service_desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    document = response.json()

    version = declared_version(response.headers["content-type"])
    assert declared_version(service_desc["type"]) == version
    assert document["openapi"].startswith(f"{version}.")
    VALIDATORS[version](document).validate()  # raises with the first error
    validate(document)  # the validator picked from the document itself
    paths = document["paths"]
    assert ("/collections/{collection_id}/bulk_items" in paths) is writable


async def test_bulk_items_declares_its_path_parameter(client: httpx.AsyncClient) -> None:
    operation = (await client.get("/api")).json()["paths"][
        "/collections/{collection_id}/bulk_items"
    ]["post"]
    parameters = [(p["name"], p["in"], p["required"]) for p in operation["parameters"]]
    assert parameters == [("collection_id", "path", True)]


@pytest.mark.parametrize("body", [None, b"null"], ids=["no-body", "json-null"])
async def test_bulk_items_without_a_body_is_a_400(
    client: httpx.AsyncClient, body: bytes | None
) -> None:
    headers = {"Content-Type": "application/json"}
    response = await client.post("/collections/anything/bulk_items", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert {"code", "description"} <= set(response.json())
