"""One error root for the catalogue; the API maps these to HTTP statuses in one table."""

from __future__ import annotations


class CatalogueError(Exception):
    """Root of every error the catalogue raises on purpose."""


class NotFoundError(CatalogueError):
    """A collection or item that the caller named does not exist."""


class ConflictError(CatalogueError):
    """A write would duplicate an existing collection or item."""


class CollectionNotEmptyError(ConflictError):
    """Deleting a collection that still holds items, without asking for its items to go."""

    def __init__(self, collection_id: str, items: int) -> None:
        super().__init__(
            f"collection {collection_id!r} still holds {items} items; deleting it would "
            "delete them too"
        )
        self.collection_id = collection_id
        self.items = items


class InvalidInputError(CatalogueError):
    """Input that is not acceptable: a malformed item, token, bbox, datetime ..."""


class UnknownPropertyError(InvalidInputError):
    """A filter or sortby names a property that is not among the queryables."""


class DatabaseUnavailableError(CatalogueError):
    """The database cannot be reached or timed out; the caller may retry later."""


class NotMigratedError(CatalogueError):
    """The database schema is missing or behind the code's Alembic head."""


class EmbeddedDatabaseError(CatalogueError):
    """The embedded PostgreSQL cluster cannot be created, started or stopped."""
