"""Request models where we accept a little more than stac-fastapi's defaults."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator
from stac_fastapi.types.search import BaseSearchPostRequest

from api.search_models import LIMIT_DESCRIPTION, CountableLimit


class SearchPostRequest(BaseSearchPostRequest):
    """POST /search body; a lone string for `collections` or `ids` means a one-item list.

    The spec asks for arrays, but some clients (stac-api-validator 0.6.8's sort checks among
    them) send `"collections": "x"`; reading it as `["x"]` is unambiguous and loses nothing.
    `limit` may be 0: the count alone (`api.search_models`).
    """

    limit: CountableLimit | None = Field(default=10, description=LIMIT_DESCRIPTION)

    @field_validator("collections", "ids", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        """A body that is not an object (`""`, `[]`, `3`) is a 400; stac-fastapi's own
        validator would call `.get` on it (a 500)."""
        if not isinstance(value, dict):
            raise ValueError("the search body must be a JSON object")
        return value
