"""Written STAC documents made current (`catalogue.stac_migration`) before they are
validated, and what was changed reported in a `Warning` header.

stac-fastapi's create and update routes validate their body against stac-pydantic's models
before the client sees it, and those models refuse what public catalogs publish (a 0.9 or
1.0.0-beta collection has no `type`; an overall bbox that does not contain the others is "not
fully contained in Overall BBOX"). `NormalisedBodyRoute`, the route class of the
transactions router, therefore normalises the JSON body of those routes first, so the model
sees the migrated document; what cannot be migrated is a 400 naming the problem. Bulk
inserts and patches, whose documents reach the client as plain dicts, are normalised in
`api.transactions` with `normalised_item` / `normalised_collection`.

Every change is reported as one `Warning: 299 cubestac "<text>"` value per distinct change
(RFC 9110 leaves the header's semantics to us since RFC 9111 retired its caching codes;
299 is the "miscellaneous persistent warning" code it had); bulk responses also list
them per item in a `warnings` member of the JSON body.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from api.routing import AwaitedRequestModelRoute
from catalogue import json_codec
from catalogue.stac_migration import normalise_collection, normalise_item

Warned = tuple[str, str]  # (what: "item 'x'", the change)
WARN_AGENT = "cubestac"
MAX_HEADER_WARNINGS = 20


def normalised_item(item: Any, warned: list[Warned]) -> Any:
    """The item in the served STAC version; its changes appended to `warned`."""
    result = normalise_item(item)
    subject = f"item {_id(result.document)}"
    warned.extend((subject, warning) for warning in result.warnings)
    return result.document


def normalised_collection(collection: Any, warned: list[Warned]) -> Any:
    """The collection in the served STAC version; its changes appended to `warned`."""
    result = normalise_collection(collection)
    subject = f"collection {_id(result.document)}"
    warned.extend((subject, warning) for warning in result.warnings)
    return result.document


def _id(document: Any) -> str:
    return repr(document.get("id")) if isinstance(document, dict) else "?"


def _item_body(body: Any, warned: list[Warned]) -> Any:
    """An item, or a FeatureCollection of items (POST .../items takes both)."""
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        features = body.get("features")
        if isinstance(features, list):
            return {**body, "features": [normalised_item(f, warned) for f in features]}
        return body
    return normalised_item(body, warned)


BodyNormaliser = Callable[[Any, list[Warned]], Any]
# (method, path template) of the routes whose body stac-pydantic validates
BODIES: dict[tuple[str, str], BodyNormaliser] = {
    ("POST", "/collections"): normalised_collection,
    ("PUT", "/collections/{collection_id}"): normalised_collection,
    ("POST", "/collections/{collection_id}/items"): _item_body,
    ("PUT", "/collections/{collection_id}/items/{item_id}"): normalised_item,
}


def warning_values(warned: Iterable[Warned]) -> list[str]:
    """`Warning` header values: each distinct change once (with how many documents it
    concerned when more than one), at most MAX_HEADER_WARNINGS of them."""
    counts = Counter(change for _, change in warned)
    values = []
    for change, count in list(counts.items())[:MAX_HEADER_WARNINGS]:
        text = change if count == 1 else f"{change} ({count} documents)"
        quoted = orjson.dumps(text.encode("ascii", "backslashreplace").decode()).decode()
        values.append(f"{WARN_AGENT} {quoted}")
    return [f"299 {value}" for value in values]


def with_warnings(response: Response, warned: Iterable[Warned]) -> Response:
    """`response` with one `Warning` header per distinct change."""
    for value in warning_values(warned):
        response.headers.append("Warning", value)
    return response


def warning_texts(warned: Iterable[Warned]) -> list[str]:
    """The changes as a JSON body lists them: "item 'x': migrated from ..."."""
    return [f"{subject}: {change}" for subject, change in warned]


def _with_body(request: Request, body: bytes) -> Request:
    """The request again, its body replaced (the original's stream has been read)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


class NormalisedBodyRoute(AwaitedRequestModelRoute):
    """A transactions route whose JSON body, when BODIES names the route, is normalised
    before FastAPI validates it; the response carries the changes as `Warning` headers."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # set first: APIRoute.__init__ builds the handler (get_route_handler)
        methods = {method.upper() for method in kwargs.get("methods") or ()}
        self.normalise_body = next(
            (
                normalise
                for (method, template), normalise in BODIES.items()
                if method in methods and path.endswith(template)
            ),
            None,
        )
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        normalise = self.normalise_body
        if normalise is None:
            return handler

        async def normalising_handler(request: Request) -> Response:
            warned: list[Warned] = []
            try:
                body = json_codec.loads(await request.body())  # big integers kept exact
            except ValueError:  # orjson's and the stdlib's JSONDecodeError
                return await handler(request)  # FastAPI reports the malformed body
            normalised = normalise(body, warned)
            if normalised is not body:
                request = _with_body(request, json_codec.dumps_bytes(normalised))
            return with_warnings(await handler(request), warned)

        return normalising_handler
