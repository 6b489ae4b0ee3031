"""GET request models of item search whose `limit` may be 0 (the count alone).

`limit=0` asks for `numberMatched` and no features (issue 16); stac-fastapi's models take
a positive `limit` only. Same parameters otherwise, capped at 10,000 as theirs are.
No `from __future__ import annotations` here: FastAPI reads these annotations from the
models' signatures, outside this module's namespace.
"""

from typing import Annotated

import attr
from fastapi import Query
from pydantic import NonNegativeInt
from pydantic.functional_validators import AfterValidator
from stac_fastapi.api.models import ItemCollectionUri
from stac_fastapi.types.search import BaseSearchGetRequest, crop

LIMIT_DESCRIPTION = (
    "How many items a page holds (capped to the server's maximum); 0: none, with "
    "numberMatched when the count can be had within its time budget."
)
CountableLimit = Annotated[NonNegativeInt, AfterValidator(crop)]


@attr.s
class SearchGetRequest(BaseSearchGetRequest):
    """`GET /search` parameters; `limit` may be 0."""

    limit: Annotated[CountableLimit | None, Query(description=LIMIT_DESCRIPTION)] = attr.ib(
        default=10
    )


@attr.s
class ItemsGetRequest(ItemCollectionUri):
    """`GET /collections/{id}/items` parameters; `limit` may be 0."""

    limit: Annotated[CountableLimit | None, Query(description=LIMIT_DESCRIPTION)] = attr.ib(
        default=10
    )
