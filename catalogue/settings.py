"""Settings read from the environment (see the contracts in README.md).

Nothing here is read at import time: entry points build `Settings()` and pass it down, so
tests can build their own without touching the process environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, HttpUrl, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where the embedded cluster lives unless configured.

    Root's home is not traversable by the unprivileged `postgres` user that must own the
    cluster, so root gets a system folder; everyone else gets an XDG data folder.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/cubestac")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "cubestac"


class EmbeddedDatabaseSettings(BaseModel):
    """The private PostGIS cluster used when `DATABASE_URL` is not set."""

    data_dir: Path = Field(default_factory=default_data_dir)
    port: int = Field(default=54329, ge=1024, le=65535)
    database: str = "cubestac"
    pg_bin_dir: Path | None = None
    os_user: str = "postgres"


class DatabasePoolSettings(BaseModel):
    """Connection pool and per-statement bounds, so a slow query never hangs a worker."""

    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=5, ge=0, le=200)
    pool_timeout_s: float = Field(default=5.0, gt=0)
    statement_timeout_ms: int = Field(default=15_000, ge=100)


class ApiSettings(BaseModel):
    """Request bounds of the STAC API."""

    title: str = "cubestac"
    description: str = "STAC catalogue and Zarr data cubes"
    catalog_id: str = "cubestac"
    default_limit: int = Field(default=10, ge=1)
    # a larger `limit` is capped to it; stac-fastapi's request models cap at 10,000 first
    max_limit: int = Field(default=10_000, ge=1, le=10_000)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_ids: int = Field(default=10_000, ge=1)
    max_collections: int = Field(default=1_000, ge=1)
    # vertices of an `intersects` geometry, and of a filter's geometry literals together
    max_geometry_vertices: int = Field(default=10_000, ge=4)
    max_filter_text_chars: int = Field(default=64 * 1024, ge=256, le=256 * 1024)  # parser stack
    max_filter_json_chars: int = Field(default=1024 * 1024, ge=256)
    max_filter_depth: int = Field(default=100, ge=4)  # JSON levels; parentheses in text
    max_filter_nodes: int = Field(default=10_000, ge=10)
    max_q_chars: int = Field(default=1_000, ge=1)  # the whole free-text `q`
    # budget of the exact count behind `numberMatched` on multi-page results; 0: never count
    count_timeout_ms: int = Field(default=100, ge=0, le=60_000)
    # a search the planner expects to match more items is not counted (numberMatched left
    # out at once, the budget not spent); searches by collections and datetime alone are
    # counted from the per-day counts whatever their size
    count_estimate_max: int = Field(default=100_000, ge=0)
    # count searches by collections and datetime (and answer /aggregate's totals, datetime
    # and collection frequencies for them) from the per-day counts; false: from the items
    count_by_days: bool = True
    # `child` links on the landing page (the first collections by id), and the default page
    # of /children; the rest are reached through /children or /collections' `next` links
    max_child_links: int = Field(default=1_000, ge=1, le=10_000)
    # statement_timeout of one /aggregate request (all its aggregations); over it: a 504
    aggregate_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    # a search body's commas and brackets: bounds what parsing it costs before it is parsed
    max_search_body_values: int = Field(default=200_000, ge=1_000)


class ServerSettings(BaseModel):
    """How long a client may take to send a request, and how many connections one worker
    keeps (`cubestac serve`). uvicorn has no deadline for reading a request, so without these
    a client that sends its headers slowly holds its connection for ever."""

    header_timeout_s: float = Field(default=10.0, gt=0)  # from the first byte of a request
    body_timeout_s: float = Field(default=60.0, gt=0)  # from the end of the head to the last byte
    keep_alive_s: int = Field(default=30, ge=1)  # an idle connection between requests
    max_head_bytes: int = Field(default=1024 * 1024, ge=8 * 1024)  # request line and headers
    # per worker; at the cap the connection that has waited longest for its client is dropped
    max_connections: int = Field(default=1000, ge=2)


class MonitoringSettings(BaseModel):
    """Health probe, access log and Prometheus metrics (docs/operations.md, "Monitoring")."""

    # `/_mgmt/health` answers DOWN (503) when `SELECT 1` takes longer: an LB probe never hangs
    health_timeout_s: float = Field(default=2.0, gt=0, le=30)
    access_log: bool = True
    metrics: bool = True
    # when set, `/metrics` requires `Authorization: Bearer <token>`; public otherwise
    metrics_token: SecretStr | None = None
    # the job counts in `/metrics` are read from the database at most this often
    jobs_refresh_s: float = Field(default=15.0, ge=0)


class CubeBuildSettings(BaseModel):
    """Limits and the figures behind the estimate printed before each cube build."""

    # pixels per time step of a cube's grid; larger grids are refused at validation (exit 2).
    # 1e10 is 100,000 x 100,000 px: 300x the forest-recovery grid (5156 x 6418 at 30 m)
    max_grid_pixels: int = Field(default=10_000_000_000, ge=1)
    # output values written per second per dask thread, for the duration estimate: 7.5 M/s is
    # half of bench/CUBES.md's cci_biomass (bilinear EPSG:4326 -> 3035, float32, 2 threads)
    values_per_thread_s: float = Field(default=7_500_000.0, gt=0)


class EdrSettings(BaseModel):
    """Bounds of the EDR queries on cubes (`/position`, `/area`; README, "EDR queries")."""

    # level-0 pixels under an area query's bounding box times the time steps asked for: a
    # budget on what one request reads (25 M float32 values are 100 MB before compression)
    max_area_pixels: int = Field(default=25_000_000, ge=1)
    # vertices of the `coords` WKT of one query
    max_vertices: int = Field(default=10_000, ge=4)
    # stored chunks one `/position` query may read (all its variables together): on a cube
    # without the time-series layout a series costs one chunk per time step, each a whole
    # map tile to decompress (3,650 steps took 12 s of a core, bench/results/edr.md)
    max_position_chunks: int = Field(default=1_000, ge=1)


class TileSettings(BaseModel):
    """Map tiles of cube items (README "Map tiles")."""

    # rendered tiles kept in memory per API worker (an LRU); 0 turns the cache off
    cache_mb: int = Field(default=64, ge=0, le=16_384)
    # decoded Zarr chunks kept in memory per API worker (an LRU); neighbouring tiles share
    # them. 0 turns it off (every tile decompresses its chunks)
    chunk_cache_mb: int = Field(default=256, ge=0, le=65_536)
    # `Cache-Control: max-age` of tiles, TileJSON and WMTS capabilities; a tile URL names an
    # item, whose next build is a new store version, so tiles are not cached for ever
    max_age_s: int = Field(default=3600, ge=0)


class Settings(BaseSettings):
    """All cubestac settings; `CUBESTAC_*` variables, nested sections with `__`."""

    model_config = SettingsConfigDict(
        env_prefix="CUBESTAC_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CUBESTAC_DATABASE_URL")
    )
    public_url: str | None = None
    cube_root: str | None = None
    # where readers reach the cube root over HTTP(S) instead (a bucket's public URL, a CDN)
    cube_public_base: HttpUrl | None = None
    # S3 cube roots: readers need no credentials (`anon: true` in items' storage options)
    cube_anon: bool = False
    api_key: SecretStr | None = None
    db: EmbeddedDatabaseSettings = Field(default_factory=EmbeddedDatabaseSettings)
    pool: DatabasePoolSettings = Field(default_factory=DatabasePoolSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    cubes: CubeBuildSettings = Field(default_factory=CubeBuildSettings)
    edr: EdrSettings = Field(default_factory=EdrSettings)
    tiles: TileSettings = Field(default_factory=TileSettings)
