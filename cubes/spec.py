"""The `cubes:` section of CONFIG as typed models (DESIGN.md, "CONFIG (YAML)").

These models check shape, ranges and what can be known without the catalogue: the grid's
CRS is known to PROJ, its size is under `CUBESTAC_CUBES__MAX_GRID_PIXELS` (passed in the
validation context as `max_grid_pixels`), a memory limit parses. A CONFIG that fails them
is refused before anything runs (exit 2). Whether an input has items in the bbox, whether
a variable exists or an input's CRS is known is learnt while the cube is built, and fails
that cube alone (exit 1).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from catalogue.errors import InvalidInputError
from catalogue.filters import filter_clause, parse_filter
from catalogue.ids import id_problem, unique_ids
from catalogue.times import as_utc

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
PROCESSING_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
PERIOD_PATTERN = re.compile(r"^(\d*)([DWMY])$")
MAX_GRID_PIXELS = 10_000_000_000  # default of CUBESTAC_CUBES__MAX_GRID_PIXELS
MAX_GRID_PIXELS_SETTING = "CUBESTAC_CUBES__MAX_GRID_PIXELS"
DEFAULT_INNER_CHUNK = 512  # px: sharding's default inner chunk, at most
MIN_INNER_CHUNK = 64  # px: below this a tile_size's divisor makes no useful inner chunk
EDGE_TOLERANCE = 1e-6  # of a pixel: a bbox that is a whole number of pixels stays so

Resampling = Literal["nearest", "bilinear", "cubic", "average", "mode", "min", "max"]
AggregationMethod = Literal["mean", "median", "min", "max", "sum", "count", "first", "last"]


def _catalogue_id(value: str) -> str:
    """The catalogue's id rule (`catalogue.ids`): a cube item is published under
    `/collections/{collection}/items/{id}`, which must be a URL the API can serve."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} {problem}")
    return value


CollectionId = Annotated[str, AfterValidator(_catalogue_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GridSpec(_Strict):
    """The common grid: anchored at the bbox's north-west corner, `ceil` pixels to the
    south-east, so the east/south edges may pass the bbox by less than one pixel."""

    crs: str = Field(description="Any CRS PROJ knows: 'EPSG:3035', a WKT or PROJ string.")
    bbox: tuple[float, float, float, float] = Field(
        description="[west, south, east, north] in the grid's CRS."
    )
    resolution: float | tuple[float, float] = Field(
        description="Pixel size in CRS units; [x, y] for non-square pixels."
    )
    tile_size: int = Field(2048, ge=16, le=16384, description="Chunk size in x and y.")

    @field_validator("crs", mode="before")
    @classmethod
    def _epsg_number(cls, value: Any) -> Any:
        return f"EPSG:{value}" if isinstance(value, int) else value

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(value)
        except CRSError as error:
            raise ValueError(f"unknown CRS {value!r}: {error}") from error
        return value

    @field_validator("bbox")
    @classmethod
    def _ordered(cls, value: tuple[float, float, float, float]) -> tuple[float, ...]:
        west, south, east, north = value
        if not (west < east and south < north):
            raise ValueError(
                "bbox must be [west, south, east, north] with west < east, south < north"
            )
        return value

    @field_validator("resolution")
    @classmethod
    def _positive(cls, value: float | tuple[float, float]) -> float | tuple[float, float]:
        values = value if isinstance(value, tuple) else (value,)
        if any(v <= 0 for v in values):
            raise ValueError("resolution must be positive")
        return value

    @model_validator(mode="after")
    def _not_too_big(self, info: ValidationInfo) -> GridSpec:
        """An absurd grid (a typo in the resolution or a bbox in the wrong units) would
        otherwise sit building a dask graph of millions of chunks, at full CPU, for ever."""
        limit = (info.context or {}).get("max_grid_pixels", MAX_GRID_PIXELS)
        height, width = self.shape
        if height * width > limit:
            raise ValueError(
                f"the grid is {width:,} x {height:,} = {height * width:.3g} pixels, over the "
                f"limit of {limit:.3g} pixels per time step ({MAX_GRID_PIXELS_SETTING}): "
                "check the bbox's units and the resolution, or raise the limit"
            )
        return self

    @property
    def xy_resolution(self) -> tuple[float, float]:
        res = self.resolution
        return res if isinstance(res, tuple) else (res, res)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels: `ceil` towards the south-east (see `cubes.grid`)."""
        west, south, east, north = self.bbox
        xres, yres = self.xy_resolution
        width = math.ceil((east - west) / xres - EDGE_TOLERANCE)
        height = math.ceil((north - south) / yres - EDGE_TOLERANCE)
        return height, width


def _as_utc(value: date | datetime | None, end: bool) -> datetime | None:
    """Dates are whole days: a range's end date includes that whole day."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    moment = datetime.combine(value, time.max if end else time.min)
    return moment.replace(tzinfo=UTC)


class TimeSpec(_Strict):
    """Time selection and optional aggregation; inputs without time stay without time."""

    range: tuple[date | datetime | None, date | datetime | None] | None = Field(
        None, description="[start, end], inclusive; null for an open end."
    )
    period: str | None = Field(
        None, description="Aggregation period: <n>D, <n>W, <n>M or <n>Y (e.g. 1Y)."
    )
    method: AggregationMethod = "mean"

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None and not PERIOD_PATTERN.match(value):
            raise ValueError("period must look like 1D, 7D, 1W, 1M, 3M or 1Y")
        return value

    @model_validator(mode="after")
    def _range_order(self) -> TimeSpec:
        start, end = self.bounds
        if start is not None and end is not None and start > end:
            raise ValueError("time.range: start is after end")
        return self

    @property
    def bounds(self) -> tuple[datetime | None, datetime | None]:
        if self.range is None:
            return None, None
        return _as_utc(self.range[0], end=False), _as_utc(self.range[1], end=True)


class InputSpec(_Strict):
    """One input: catalogue items of one collection, opened lazily and regridded."""

    collection: CollectionId
    ids: list[str] | None = Field(None, description="Only these item ids.")
    filter: str | dict[str, Any] | None = Field(
        None,
        description="CQL2 (text or JSON) on the items, evaluated by the catalogue's search, "
        'e.g. "eo:cloud_cover < 20".',
    )
    asset: str | None = Field(None, description="Asset key to open; default: the data asset.")
    variables: list[str] | None = Field(None, description="Variables to take; all if absent.")
    rename: dict[str, str] | None = Field(
        None, description="New names for variables in the cube (after `processing`)."
    )
    resampling: Resampling = "nearest"
    processing: Annotated[str, Field(pattern=PROCESSING_PATTERN)] | None = Field(
        None,
        description="module:function (xr.Dataset -> xr.Dataset), run on each item's data "
        "in its native grid before regridding; importable from the CONFIG's folder.",
    )
    nodata: float | Literal["nan"] | None = Field(
        None, description="Overrides (or supplies) the inputs' nodata value."
    )

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        """Parsed once here so that a malformed filter fails the CONFIG (exit 2)."""
        try:
            parsed = parse_filter(value)
            if parsed is not None:
                filter_clause(parsed, None)  # operators and operand types, no database
        except InvalidInputError as error:
            raise ValueError(str(error)) from error
        return value


class CompressorSpec(_Strict):
    """Blosc (zstd inside, byte shuffle) or plain Zstandard."""

    name: Literal["blosc", "zstd"] = "blosc"
    level: int = Field(3, ge=1, le=19, description="1-9 for blosc, 1-19 for zstd.")

    @model_validator(mode="after")
    def _blosc_levels(self) -> CompressorSpec:
        if self.name == "blosc" and self.level > 9:
            raise ValueError("blosc levels run from 1 to 9")
        return self


class ComputeSpec(_Strict):
    """Dask cluster size; unset fields come from CUBESTAC_DASK_* or the machine."""

    workers: int | None = Field(None, ge=1, le=256)
    threads: int | None = Field(None, ge=1, le=256, description="Threads per worker.")
    memory_limit: str | int | None = Field(
        None, description="Total for the cluster ('4GB' or bytes), split across workers."
    )
    processes: bool | None = Field(None, description="Workers as processes (else threads).")

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str):
            parse_memory(value)
        elif value is not None and value <= 0:
            raise ValueError("memory_limit must be positive")
        return value


def parse_memory(value: str) -> int:
    """Bytes of a size such as '4GB', '512 MiB' or '2e9' (dask's parser); ValueError names
    the accepted forms."""
    from dask.utils import parse_bytes

    try:
        size = int(parse_bytes(value))
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{value!r} is not a size: use bytes or a number with a unit, e.g. '4GB', '512MiB'"
        ) from error
    if size <= 0:
        raise ValueError("memory_limit must be positive")
    return size


class TimeseriesSpec(_Strict):
    """The time-series layout (issue 15): a second copy of the full resolution in the same
    store (group `timeseries/`, asset `zarr-timeseries`), each chunk holding the whole time
    axis of a small square of pixels, so a point's time series is one chunk read."""

    chunk: int | None = Field(
        None,
        ge=1,
        le=16384,
        description="Side of a chunk in pixels (at most the grid's tile_size); default: the "
        "largest power of two that keeps a chunk of the whole time axis under 4 MiB.",
    )


class ShardingSpec(_Strict):
    """Zarr v3 sharding (the `sharding_indexed` codec): each shard is one file holding one
    whole tile (`grid.tile_size`, zarr-python's `shards`), made of inner chunks of
    `chunks` pixels (zarr-python's `chunks`), each compressed on its own. A reader asks for
    a shard's index (a suffix byte range) and then only the inner chunks it needs, so map
    tiles read little, while the store keeps one file per tile rather than one per inner
    chunk."""

    chunks: int | None = Field(
        None,
        ge=16,
        le=16384,
        description="Side of an inner chunk in pixels; must divide grid.tile_size. Default: "
        f"the largest divisor of tile_size up to {DEFAULT_INNER_CHUNK} (a 512 px map tile "
        "at 2x, or four 256 px tiles).",
    )

    def inner_chunk(self, tile_size: int) -> int:
        """The inner chunk side for shards of `tile_size` pixels."""
        if self.chunks is not None:
            return self.chunks
        limit = min(tile_size, DEFAULT_INNER_CHUNK)
        best = max(d for d in range(1, limit + 1) if not tile_size % d)
        return best if best >= MIN_INNER_CHUNK else tile_size  # e.g. a prime tile_size


class CubeSpec(_Strict):
    """One cube: inputs regridded onto one grid, written as one Zarr, published as one item."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    collection: CollectionId
    title: str | None = None
    description: str | None = None
    grid: GridSpec
    time: TimeSpec | None = None
    inputs: list[InputSpec] = Field(min_length=1)
    zarr_format: Literal[2, 3] = Field(
        2,
        description="2 (default: every Zarr reader, GDAL >= 3.4) or 3 (zarr-python >= 3, "
        "GDAL >= 3.13 with sharding; see README, 'Which readers open which format').",
    )
    sharding: bool | ShardingSpec | None = Field(
        None,
        description="Zarr v3 only: shards of one tile made of inner chunks (true, or "
        "{chunks: N} for the inner chunk side); default: on for zarr_format 3. false "
        "writes v3 with one chunk per tile, as format 2 does.",
    )
    compressor: CompressorSpec = Field(default_factory=CompressorSpec)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    timeseries: bool | TimeseriesSpec = Field(
        False,
        description="Also publish the time-series layout (true, or {chunk: N} to choose its "
        "chunk side); variables without time keep the map layout's chunks there.",
    )
    store: Literal["zarr", "icechunk"] = Field(
        "zarr",
        description="zarr: a new Zarr store per build, the item switched to it (old ones "
        "kept for grace_period); icechunk: one Icechunk repository per cube, each build a "
        "commit on its branch main, past versions kept and opened by snapshot id (Zarr "
        "format 3 only; zarr_format defaults to 3).",
    )
    grace_period: timedelta = Field(
        timedelta(hours=1),
        description="How long a replaced version stays readable for readers that hold its "
        "href (seconds or ISO 8601 duration).",
    )

    @model_validator(mode="before")
    @classmethod
    def _icechunk_format(cls, value: Any) -> Any:
        """Icechunk stores Zarr format 3 only: it is the default there, and format 2 an
        error that names both fields."""
        if not isinstance(value, dict) or value.get("store") != "icechunk":
            return value
        if "zarr_format" not in value:
            return {**value, "zarr_format": 3}
        if value["zarr_format"] != 3:
            raise ValueError(
                f"store: icechunk holds Zarr format 3 only, but zarr_format is "
                f"{value['zarr_format']!r}: set zarr_format: 3 or leave it out"
            )
        return value

    @field_validator("compressor", mode="before")
    @classmethod
    def _compressor_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _timeseries_chunk(self) -> CubeSpec:
        layout = self.timeseries_layout
        if layout is not None and layout.chunk is not None and layout.chunk > self.grid.tile_size:
            raise ValueError(
                f"timeseries.chunk ({layout.chunk}) is larger than grid.tile_size "
                f"({self.grid.tile_size}): the time-series layout is chunked smaller in space"
            )
        return self

    @model_validator(mode="after")
    def _sharding_format(self) -> CubeSpec:
        if self.sharding not in (None, False) and self.zarr_format != 3:
            raise ValueError(
                "sharding needs zarr_format: 3 (Zarr v2 has no shards); set zarr_format: 3 "
                "or remove sharding"
            )
        layout = self.sharding_layout
        tile = self.grid.tile_size
        if layout is not None and layout.chunks is not None and tile % layout.chunks:
            raise ValueError(
                f"sharding.chunks ({layout.chunks}) must divide grid.tile_size ({tile}): a "
                "shard is one tile made of whole inner chunks"
            )
        return self

    @property
    def sharding_layout(self) -> ShardingSpec | None:
        """The sharding asked for (on by default for Zarr v3), or None."""
        if self.zarr_format != 3 or self.sharding is False:
            return None
        return self.sharding if isinstance(self.sharding, ShardingSpec) else ShardingSpec()

    @property
    def inner_chunk(self) -> int | None:
        """Side of an inner chunk when the cube is sharded, else None."""
        layout = self.sharding_layout
        return layout.inner_chunk(self.grid.tile_size) if layout is not None else None

    @property
    def timeseries_layout(self) -> TimeseriesSpec | None:
        """The time-series layout asked for, or None."""
        if isinstance(self.timeseries, TimeseriesSpec):
            return self.timeseries
        return TimeseriesSpec() if self.timeseries else None


class CubesConfig(BaseModel):
    """The part of CONFIG that `cubestac cubes` reads; other sections are ignored here."""

    model_config = ConfigDict(extra="ignore")

    cubes: Annotated[list[CubeSpec], unique_ids("cube")] = Field(default_factory=list)
