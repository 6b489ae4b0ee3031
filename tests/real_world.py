"""The corpus of real-world STAC document shapes (tests/data/real_world/) and the offline
validation of what the catalogue makes of them: the STAC 1.1.0 core schemas and every
extension schema a document declares, from the mirror in tests/data/schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "data" / "real_world"


def corpus(pattern: str) -> list[Path]:
    """The corpus files matching `pattern` (e.g. "item-*.json", "refused/*.json")."""
    return sorted(CORPUS.glob(pattern))


def load(path: Path | str) -> dict[str, Any]:
    return json.loads((CORPUS / path).read_text())


def accepted_collections() -> list[dict[str, Any]]:
    return [load(path) for path in corpus("collection-*.json")]


def accepted_items() -> list[dict[str, Any]]:
    return [load(path) for path in corpus("item-*.json")]


def validate_current(documents: list[dict[str, Any]]) -> list[str]:
    """Validate each served document against the schemas of the STAC version it declares
    (1.1.0: no migration happens here, `migrate=False`), and read it
    back with pystac as pystac-client does. Returns the schema URIs used."""
    import pystac
    import pystac.validation

    from tests.stac_schemas import fresh_schema_caches, offline_schemas

    used: set[str] = set()
    with offline_schemas() as log, fresh_schema_caches():
        for document in documents:
            assert document["stac_version"] == "1.1.0", document["stac_version"]
            copy = json.loads(json.dumps(document))
            used.update(str(uri) for uri in pystac.validation.validate_dict(copy) if uri)
            kind = pystac.Item if document["type"] == "Feature" else pystac.Collection
            kind.from_dict(json.loads(json.dumps(document)), migrate=False)
    assert not log.refused, log.refused
    return sorted(used)
