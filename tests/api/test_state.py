"""The typed application state: what `create_app` attaches and handlers read."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from api import create_app
from api.state import AppState, state_of
from catalogue.settings import Settings

UNUSED_DB = "postgresql://unused@127.0.0.1/unused"  # the app is built, never started


def test_create_app_attaches_its_settings_as_typed_state(tmp_path) -> None:
    settings = Settings(
        database_url=UNUSED_DB, public_url="https://stac.example.org/", cube_root=str(tmp_path)
    )
    state = state_of(create_app(settings))
    assert isinstance(state, AppState)
    assert state.public_url == "https://stac.example.org/"
    assert state.cube_hrefs is not None and state.cube_hrefs.root == f"{tmp_path}/"


def test_without_a_cube_root_hrefs_are_handed_out_as_stored() -> None:
    assert state_of(create_app(Settings(database_url=UNUSED_DB))).cube_hrefs is None


def test_an_app_not_built_by_create_app_has_no_state() -> None:
    with pytest.raises(AttributeError):
        state_of(FastAPI())
