"""PATCH bodies: RFC 7396 merge patches and RFC 6902 operation lists, applied with jsonpatch."""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer
from stac_fastapi.extensions.transaction.request import (
    PartialCollection,
    PartialItem,
    PatchOperation,
)

from catalogue.errors import InvalidInputError


def apply_patch(
    document: dict[str, Any], patch: PartialItem | PartialCollection | list[PatchOperation]
) -> dict[str, Any]:
    """The patched copy of `document`; a patch that does not apply is a 400, not a 500."""
    if patch is None:  # a JSON `null` body passes FastAPI's optional body
        raise InvalidInputError("request body: a patch is required")
    operations = patch.operations() if not isinstance(patch, list) else patch
    raw = [
        operation.model_dump(mode="json", by_alias=True, exclude_none=False)
        for operation in operations
    ]
    for operation in raw:
        if operation.get("op") in ("move", "copy"):
            operation.pop("value", None)
        elif operation.get("op") == "remove":
            operation.pop("value", None)
    try:
        return jsonpatch.apply_patch(document, raw)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise InvalidInputError(f"patch does not apply: {error}") from error
