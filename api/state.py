"""The application's own state, typed: what `create_app` sets once and requests read.

Starlette's `app.state` is a bag of attributes typed `Any`; reading `request.app.state.x`
in every module hid a typo or a wrong type until that request ran. `create_app` puts one
`AppState` on it, and handlers read it through `app_state(request)`, so mypy checks every
use. (stac-fastapi's own entries, such as `router_prefix`, stay where it puts them.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request

from api.cube_datasets import CubeDatasets
from catalogue.database import Database
from catalogue.search.service import ItemSearch
from catalogue.serializers import CubeHrefs

_KEY = "cubestac"


@dataclass(frozen=True, slots=True)
class AppState:
    """The catalogue, the public base URL of links (None: the request's own), how cube
    asset hrefs are rewritten in responses (None: handed out as stored), the item
    search with its caches, and the opened cube stores that tiles and EDR queries read."""

    database: Database
    public_url: str | None
    cube_hrefs: CubeHrefs | None
    search: ItemSearch
    cube_datasets: CubeDatasets = field(default_factory=CubeDatasets)


def attach_state(app: Starlette, state: AppState) -> None:
    """Store `state` on `app` (once, from `create_app`)."""
    setattr(app.state, _KEY, state)


def state_of(app: Starlette) -> AppState:
    """The state `create_app` attached to `app`."""
    state = getattr(app.state, _KEY)
    assert isinstance(state, AppState), "the app was not built by api.create_app"
    return state


def app_state(request: Request) -> AppState:
    """The state of the app serving `request`."""
    return state_of(request.app)
