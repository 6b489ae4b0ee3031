"""The STAC API: stac-fastapi on our own async PostGIS backend (`create_app(settings)`)."""

from api.app import create_app

__all__ = ["create_app"]
