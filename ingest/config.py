"""The `sources:` section of CONFIG (DESIGN.md, "CONFIG"): one model per kind, tagged by `kind`.

Everything that can be wrong with a source is refused here, before anything runs, with the
field path (`sources[1].bbox: ...`). Reading the YAML file (with `${VAR}` expansion) is
`cubestac.config_file`'s job; `parse_sources` validates the mapping it returns.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from catalogue.bbox import parse_bbox
from catalogue.cube_root import normalise_root
from catalogue.errors import InvalidInputError
from catalogue.ids import unique_ids
from catalogue.times import parse_interval, rfc3339

SourceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]+$", max_length=100)]
CollectionId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=200)
]
FSSPEC_SCHEMES = frozenset({"", "file", "http", "https", "s3"})
# Settings that only change how a source is read, not what its items are: changing them does
# not invalidate the stored fingerprints (see `SourceBase.content_hash`).
OPERATIONAL_FIELDS = frozenset(
    {"mirror", "concurrency", "batch_size", "timeout_s", "retries", "retry_wait_s"}
    | {"storage_options", "headers", "cursor_overlap"}
)


class SourceBase(BaseModel):
    """Settings every source kind has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SourceId = Field(description="Unique source id: lower-case letters, digits, - and _.")
    url: str = Field(min_length=1)
    mirror: bool = Field(
        default=False, description="Remove items that are gone upstream (after a full listing)."
    )
    concurrency: int = Field(default=8, ge=1, le=64, description="Parallel upstream reads.")
    batch_size: int = Field(
        default=500, ge=1, le=50_000, description="Items written per catalogue transaction."
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Per request.")
    retries: int = Field(
        default=4, ge=0, le=20, description="Retries of 5xx, 429, timeouts and resets."
    )
    retry_wait_s: float = Field(
        default=1.0, ge=0, le=600, description="First back-off; doubles on every retry."
    )

    # Fields added after sources were stored: left out of the digest while unset, so that
    # upgrading does not make every existing source read everything again.
    LATER_FIELDS: ClassVar[frozenset[str]] = frozenset()

    def content_hash(self, harvester_version: int) -> str:
        """A digest of the settings that shape the items, with the harvester's version.

        Stored with the source; when it changes, stored fingerprints no longer vouch for the
        items, and the next run reads everything again (see catalogue.repositories.sources).
        """
        shaping = self.model_dump(mode="json", exclude=set(OPERATIONAL_FIELDS))
        for name in self.LATER_FIELDS:
            if shaping.get(name) is None:
                shaping.pop(name, None)
        shaping["harvester_version"] = harvester_version
        return hashlib.sha256(orjson.dumps(shaping, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _check_url(url: str, schemes: frozenset[str]) -> str:
    scheme = urlsplit(url).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme not in schemes:
        allowed = sorted(f"{name}://" for name in schemes if name)
        if "" in schemes:
            allowed.append("a file path")
        raise ValueError(f"unsupported URL scheme {scheme!r}: use {', '.join(allowed)}")
    return url


class StacStaticSource(SourceBase):
    """A static catalog: a `catalog.json` or `collection.json`, followed link by link."""

    kind: Literal["stac-static"]
    collections: list[CollectionId] | None = Field(
        default=None, min_length=1, description="Only items below these collections."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for s3:// (endpoint, credentials)."
    )
    read_raster_headers: bool = Field(
        default=True,
        description="Fill in proj:shape/proj:transform/CRS and band data_type of GeoTIFF "
        "data assets (local or HTTP) that an item lacks, from one header read per asset.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url, FSSPEC_SCHEMES)


class DatetimeRange(BaseModel):
    """A closed or half-open interval; `None` is open."""

    model_config = ConfigDict(frozen=True)

    start: datetime | None
    end: datetime | None

    def as_parameter(self) -> str:
        """The STAC API `datetime` parameter."""
        return "/".join(
            rfc3339(moment, seconds=True) if moment else ".." for moment in (self.start, self.end)
        )


def parse_datetime_range(value: Any) -> DatetimeRange:
    """`2021-07-01/2021-07-10`, `2021-07-01T00:00:00Z/..`, `../2020-01-01` or one instant."""
    if isinstance(value, DatetimeRange):
        return value
    if isinstance(value, datetime | date):
        value = value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a date, timestamp or interval `start/end`")
    try:
        interval = parse_interval(value.strip(), "datetime", dates=True)
    except InvalidInputError as error:
        raise ValueError(str(error)) from error
    assert interval is not None  # only an empty value gives None
    return DatetimeRange(start=interval.start, end=interval.end)


class StacApiSource(SourceBase):
    """A STAC API searched with pystac-client."""

    kind: Literal["stac-api"]
    collections: list[CollectionId] | None = Field(default=None, min_length=1)
    bbox: list[float] | None = Field(default=None, description="[west, south, east, north]")
    datetime: DatetimeRange | None = Field(
        default=None, description="`start/end` (dates or RFC 3339; `..` is open)."
    )
    filter: dict[str, Any] | None = Field(default=None, description="A CQL2-JSON expression.")
    page_size: int = Field(default=250, ge=1, le=10_000)
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra request headers (e.g. Authorization)."
    )
    cursor: Literal["none", "datetime"] = Field(
        default="none",
        description="`datetime`: after a complete run, the next one only asks for items from "
        "the newest datetime seen (minus `cursor_overlap`); for append-only archives.",
    )
    cursor_overlap: timedelta = Field(default=timedelta(days=1), ge=timedelta(0))

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url, frozenset({"http", "https"}))

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, bbox: list[float] | None) -> list[float] | None:
        try:
            parse_bbox(bbox)
        except InvalidInputError as error:
            raise ValueError(str(error)) from error
        return bbox

    @field_validator("datetime", mode="before")
    @classmethod
    def _datetime(cls, value: Any) -> DatetimeRange | None:
        return None if value is None else parse_datetime_range(value)

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not isinstance(value.get("op"), str):
            raise ValueError('a CQL2-JSON filter is an object with an "op" and its "args"')
        return value

    @model_validator(mode="after")
    def _cursor_needs_full_listing(self) -> StacApiSource:
        if self.cursor == "datetime" and self.mirror:
            raise ValueError(
                "mirror: true needs a full listing on every run; it cannot be combined "
                "with cursor: datetime"
            )
        return self


class Provider(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    roles: list[Literal["licensor", "producer", "processor", "host"]] = Field(default_factory=list)
    url: str | None = None
    description: str | None = None


class CollectionSpec(BaseModel):
    """The collection a `files` source fills; its extent is computed from the items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: CollectionId
    title: str | None = None
    description: str | None = None
    license: str = "other"
    keywords: list[str] = Field(default_factory=list)
    providers: list[Provider] = Field(default_factory=list)


class VirtualRefs(BaseModel):
    """`virtual_refs:` of a `files` source: a Kerchunk reference set per NetCDF/HDF5 and
    GeoTIFF/COG file, so readers open it as Zarr without a copy
    (`ingest.metadata.references`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str | None = Field(
        default=None,
        description="Folder or s3:// prefix the references are written under, as "
        "`<root>/<collection>/<item id>.json`. Default: `<CUBESTAC_CUBE_ROOT>/refs`, which "
        "the API serves under /cubes/refs/ (readers fetch them over HTTP).",
    )

    @field_validator("root")
    @classmethod
    def _root(cls, root: str | None) -> str | None:
        return None if root is None else _check_url(root, frozenset({"", "file", "s3"}))


class FilesSource(SourceBase):
    """A glob of GeoTIFF/COG, NetCDF or Zarr on a local folder, http(s):// listing or s3://."""

    LATER_FIELDS: ClassVar[frozenset[str]] = frozenset({"virtual_refs"})

    kind: Literal["files"]
    collection: CollectionSpec
    format: Literal["auto", "geotiff", "netcdf", "zarr"] = Field(
        default="auto", description="`auto`: from the file extension (.tif, .nc, .zarr ...)."
    )
    datetime_pattern: str | None = Field(
        default=None,
        description="A regular expression searched in the file name, with named groups "
        "`year` (required), `month`, `day`, `hour`, `minute`, `second`; the finest group "
        "present sets the period (a year, a month, a day or an instant). Wins over the "
        "file's metadata when it matches.",
    )
    storage_options: dict[str, Any] = Field(default_factory=dict)
    virtual_refs: VirtualRefs | None = Field(
        default=None,
        description="`true` (or an object with `root`): add a `references` asset (Kerchunk "
        "JSON, roles index/references) to NetCDF-4/HDF5 and GeoTIFF/COG items, so xpystac "
        "and `xr.open_dataset(href, engine='kerchunk')` open the file lazily as Zarr.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url, FSSPEC_SCHEMES)

    @field_validator("virtual_refs", mode="before")
    @classmethod
    def _virtual_refs(cls, value: Any) -> Any:
        if isinstance(value, bool):  # `virtual_refs: true` is the common spelling
            return {} if value else None
        return value

    @field_validator("datetime_pattern")
    @classmethod
    def _pattern(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from error
        if "year" not in compiled.groupindex:
            raise ValueError("the pattern needs a named group `year`, e.g. (?P<year>\\d{4})")
        unknown = set(compiled.groupindex) - {"year", "month", "day", "hour", "minute", "second"}
        if unknown:
            raise ValueError(f"unknown named groups: {', '.join(sorted(unknown))}")
        return pattern


SourceConfig = Annotated[
    StacStaticSource | StacApiSource | FilesSource, Field(discriminator="kind")
]


class SourcesSection(BaseModel):
    """The `sources:` list of CONFIG (other sections belong to other packages)."""

    model_config = ConfigDict(extra="ignore")

    sources: Annotated[list[SourceConfig], unique_ids("source")] = Field(default_factory=list)


def with_cube_root(source: SourceConfig, cube_root: str | None) -> SourceConfig:
    """The source with its references root defaulted to `<cube root>/refs` (the prefix
    `catalogue.cube_root` gives cube hrefs, so the API serves and rewrites them alike).
    Without a cube root the root stays unset, and the harvest fails saying so."""
    if not isinstance(source, FilesSource) or source.virtual_refs is None:
        return source
    if source.virtual_refs.root is not None or not cube_root:
        return source
    refs = source.virtual_refs.model_copy(update={"root": f"{normalise_root(cube_root)}/refs"})
    return source.model_copy(update={"virtual_refs": refs})


SOURCE_ADAPTER: TypeAdapter[SourceConfig] = TypeAdapter(SourceConfig)


def parse_sources(config: Mapping[str, Any]) -> list[SourceConfig]:
    """The validated sources of a CONFIG mapping; raises pydantic's ValidationError."""
    return SourcesSection.model_validate(dict(config)).sources
