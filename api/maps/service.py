"""What a map request needs, in one place: the item's cube opened as a map source, the
slice and style the query asks for, and the rendered tile (from the cache when it is there).

Everything that reads chunks, warps or encodes runs in a worker thread
(`run_in_threadpool`); what runs on the event loop only looks at metadata already in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import morecantile
from morecantile import Tile, TileMatrixSet
from morecantile.errors import InvalidIdentifier
from starlette.concurrency import run_in_threadpool

from api.cube_datasets import CubeDatasets
from api.maps.chunks import ChunkCache
from api.maps.reader import tile_values
from api.maps.render import empty_tile, render_values
from api.maps.selection import Selection, choose_variable, map_variables, select
from api.maps.source import MapSource, MapSources
from api.maps.style import (
    DEFAULT_COLORMAP,
    Style,
    ValueRanges,
    categorical,
    class_colormap,
    parse_colormap,
    parse_rescale,
)
from api.maps.tile_cache import TileCache
from api.maps.values import nodata_of
from catalogue.database import Database
from catalogue.errors import InvalidInputError, NotFoundError
from catalogue.times import parse_datetime

TILE_NAME = re.compile(r"(?P<y>\d+)(?:@(?P<scale>\d+(?:\.\d+)?)x)?(?:\.(?P<format>png|webp))?")
MAX_SCALE = 4
# query parameters that are not a dimension's selection
RESERVED = frozenset({"variable", "time", "colormap", "rescale", "tileMatrixSetId"})


@dataclass(frozen=True)
class MapQuery:
    """A map request's query: the slice (variable, time, other dims) and the style."""

    variable: str | None = None
    time: str | None = None
    colormap: str | None = None
    rescale: str | None = None
    others: Mapping[str, str] | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> MapQuery:
        others = {key: value for key, value in params.items() if key not in RESERVED}
        return cls(
            params.get("variable"),
            params.get("time"),
            params.get("colormap"),
            params.get("rescale"),
            others,
        )


@dataclass(frozen=True)
class TileAddress:
    tms: TileMatrixSet
    tile: Tile
    scale: int
    image_format: str

    @property
    def size(self) -> int:
        return self.tms.matrix(self.tile.z).tileWidth * self.scale


def tile_matrix_set(identifier: str) -> TileMatrixSet:
    try:
        return morecantile.tms.get(identifier)
    except InvalidIdentifier as error:
        raise NotFoundError(
            f"unknown tile matrix set {identifier!r}; known: {', '.join(morecantile.tms.list())}"
        ) from error


def tile_address(tms: TileMatrixSet, z: int, x: int, name: str) -> TileAddress:
    """The tile `z/x/<name>` (name: `y[@{scale}x][.png|.webp]`); 404 outside the matrix
    set, 400 for a scale outside 1..4."""
    match = TILE_NAME.fullmatch(name)
    if match is None:
        raise NotFoundError(f"no tile {name!r}: expected y[@{{scale}}x][.png|.webp]")
    scale_text = match["scale"] or "1"
    if not scale_text.isdigit() or not 1 <= int(scale_text) <= MAX_SCALE:
        raise InvalidInputError(f"tile scale @{scale_text}x: use an integer from 1 to {MAX_SCALE}")
    y = int(match["y"])
    if not tms.minzoom <= z <= tms.maxzoom:
        raise NotFoundError(
            f"zoom {z} is outside tile matrix set {tms.id} (zooms {tms.minzoom} to {tms.maxzoom})"
        )
    matrix = tms.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise NotFoundError(
            f"tile {z}/{x}/{y} is outside tile matrix set {tms.id}: at zoom {z}, x is 0 to "
            f"{matrix.matrixWidth - 1} and y is 0 to {matrix.matrixHeight - 1}"
        )
    return TileAddress(tms, Tile(x, y, z), int(scale_text), match["format"] or "png")


@dataclass(frozen=True)
class RenderedTile:
    body: bytes | None  # None: the client's copy is current (304)
    etag: str
    media_type: str


class MapService:
    """Opened sources, value ranges and the tile cache of one app."""

    def __init__(self, cubes: CubeDatasets, cache_bytes: int, chunk_cache_bytes: int) -> None:
        self.cubes = cubes
        self.sources = MapSources()
        self.ranges = ValueRanges()
        self.cache = TileCache(cache_bytes)
        self.chunks = ChunkCache(chunk_cache_bytes)

    async def source(self, database: Database, collection_id: str, item_id: str) -> MapSource:
        cube = await self.cubes.open_cube(database, collection_id, item_id)
        cached = self.sources.cached(cube)
        if cached is not None:
            return cached
        return await run_in_threadpool(self.sources.source, cube)

    def selection(self, source: MapSource, query: MapQuery) -> Selection:
        dataset = source.cube.full_resolution
        variable = choose_variable(query.variable, map_variables(source.cube.item, dataset))
        return select(dataset, variable, query.time, query.others or {}, time_range(source))

    async def tile(
        self,
        source: MapSource,
        query: MapQuery,
        address: TileAddress,
        if_none_match: str | None,
    ) -> RenderedTile:
        selection = self.selection(source, query)
        colormap = parse_colormap(query.colormap)
        rescale = parse_rescale(query.rescale)
        etag = _etag(source, selection, query, address)
        media_type = f"image/{address.image_format}"
        if if_none_match is not None and etag in _tags(if_none_match):
            return RenderedTile(None, etag, media_type)
        body = self.cache.get(etag)
        if body is None:
            body = await run_in_threadpool(
                self._render, source, selection, colormap, rescale, address
            )
            self.cache.put(etag, body)
        return RenderedTile(body, etag, media_type)

    def _render(
        self,
        source: MapSource,
        selection: Selection,
        colormap: dict[int, tuple[int, int, int, int]] | None,
        rescale: tuple[float, float] | None,
        address: TileAddress,
    ) -> bytes:
        tms, tile, size = address.tms, address.tile, address.size
        values = tile_values(source, selection, tms, tile, size, self.chunks)
        if values is None:
            return empty_tile(address.size, address.image_format)
        style = self.style(source, selection.variable, colormap, rescale)
        return render_values(values, style, address.image_format)

    def style(
        self,
        source: MapSource,
        variable: str,
        colormap: dict[int, tuple[int, int, int, int]] | None,
        rescale: tuple[float, float] | None,
    ) -> Style:
        """The query's style, the variable's defaults filling what it leaves out."""
        named = colormap is not None and len(colormap) == 256  # a registered ramp
        if rescale is None and not named and categorical(source, variable):
            classes = colormap or class_colormap(source, variable, nodata_of(source, variable))
            return Style(classes, None)
        if rescale is None:
            rescale = self.ranges.valid_range(source, variable)
        return Style(colormap or parse_colormap(DEFAULT_COLORMAP) or {}, rescale)


def time_range(source: MapSource) -> tuple[datetime, datetime] | None:
    """The time the item says the cube covers (an aggregated cube's last step covers its
    whole period), for telling a time outside the cube from one near a step."""
    properties = source.cube.item.get("properties") or {}
    start = properties.get("start_datetime") or properties.get("datetime")
    end = properties.get("end_datetime") or properties.get("datetime")
    if not (isinstance(start, str) and isinstance(end, str)):
        return None
    try:
        return parse_datetime(start, "start_datetime"), parse_datetime(end, "end_datetime")
    except InvalidInputError:  # the item's own fields: the time steps alone then decide
        return None


def _etag(source: MapSource, selection: Selection, query: MapQuery, address: TileAddress) -> str:
    tile = address.tile
    parts = [
        source.cube.store,
        selection.key,
        query.colormap or "",
        query.rescale or "",
        str(address.tms.id),
        f"{tile.z}/{tile.x}/{tile.y}@{address.scale}.{address.image_format}",
    ]
    return '"' + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] + '"'


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
