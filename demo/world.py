"""The demo world: small, seeded inputs shaped like the forest-recovery case (DESIGN.md).

Four inputs in two CRSs, written as files a harvester and a cube build read for real:

| input | file | CRS | shape |
| --- | --- | --- | --- |
| forest type | `data/forest_type.tif` (COG) | EPSG:3035, 50 m | uint8 classes 1..4, nodata 0 |
| forest age | `data/forest_age.nc` | EPSG:4326 | float32 (member=5, lat, lon), NaN holes |
| canopy height | `files/canopy/canopy_height.tif` | EPSG:3035, 60 m | float32, NaN nodata |
| biomass | `files/biomass/agb_<year>.nc` | EPSG:4326 | float32 (time=1, lat, lon), 2017-2020 |

plus a static STAC catalog (`stac/catalog.json`, relative links) describing the first two,
its items complete with grid, CRS and data types read from the files.
Biomass grows every year and drops where a storm felled the forest in 2018 -- the recovery a
user looks for. The same seed always gives the same values; `ensure_world` writes the files
once and keeps them (their modification times are what incremental harvesting compares), and
rewrites them only when `WORLD_VERSION` changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WORLD_VERSION = 2  # 2: catalog items carry grid and data types
SEED = 2026

# The demo's common grid: EPSG:3035, 100 m, 480 x 400 px (48 x 40 km in central Germany).
GRID_CRS = "EPSG:3035"
RESOLUTION = 100.0
TILE_SIZE = 256
BBOX = (4_280_000.0, 3_080_000.0, 4_328_000.0, 3_120_000.0)
MARGIN_M = 1_000.0
MARGIN_DEG = 0.02
YEARS = (2017, 2018, 2019, 2020)
STORM_YEAR = 2018
MEMBERS = 5
FOREST_CLASSES = {1: "broadleaved", 2: "coniferous", 3: "mixed", 4: "non-forest"}

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
NETCDF = "application/x-netcdf"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Lattice:
    """A north-up pixel lattice: origin (west, north), pixel size, size in pixels."""

    crs: str
    west: float
    north: float
    res: float
    width: int
    height: int

    @property
    def xs(self) -> np.ndarray:
        return self.west + (np.arange(self.width) + 0.5) * self.res

    @property
    def ys(self) -> np.ndarray:
        return self.north - (np.arange(self.height) + 0.5) * self.res

    def transform(self) -> Any:
        from affine import Affine

        return Affine(self.res, 0.0, self.west, 0.0, -self.res, self.north)

    def footprint(self) -> dict[str, Any]:
        """The lattice's outline in WGS84 (GeoJSON), densified so that it stays true."""
        from odc.geo.geobox import GeoBox

        box = GeoBox((self.height, self.width), self.transform(), self.crs)
        return box.extent.to_crs("EPSG:4326").json


def projected_lattice(res: float) -> Lattice:
    west, south, east, north = BBOX
    west = math.floor((west - MARGIN_M) / res) * res
    north = math.ceil((north + MARGIN_M) / res) * res
    width = math.ceil((east + MARGIN_M - west) / res)
    height = math.ceil((north - (south - MARGIN_M)) / res)
    return Lattice(GRID_CRS, west, north, res, width, height)


def geographic_lattice(res: float) -> Lattice:
    from pyproj import Transformer

    to_geo = Transformer.from_crs(GRID_CRS, "EPSG:4326", always_xy=True)
    gx, gy = np.meshgrid(np.linspace(BBOX[0], BBOX[2], 21), np.linspace(BBOX[1], BBOX[3], 21))
    lon, lat = to_geo.transform(gx.ravel(), gy.ravel())
    west = math.floor((lon.min() - MARGIN_DEG) / res) * res
    north = math.ceil((lat.max() + MARGIN_DEG) / res) * res
    width = math.ceil((lon.max() + MARGIN_DEG - west) / res)
    height = math.ceil((north - (lat.min() - MARGIN_DEG)) / res)
    return Lattice("EPSG:4326", west, north, res, width, height)


def _in_3035(lattice: Lattice) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in EPSG:3035 metres, so every input draws the same landscape."""
    gx, gy = np.meshgrid(lattice.xs, lattice.ys)
    if lattice.crs == GRID_CRS:
        return gx, gy
    from pyproj import Transformer

    to_3035 = Transformer.from_crs(lattice.crs, GRID_CRS, always_xy=True)
    x, y = to_3035.transform(gx.ravel(), gy.ravel())
    return np.asarray(x).reshape(gx.shape), np.asarray(y).reshape(gx.shape)


def smooth(x: np.ndarray, y: np.ndarray, scale: float, phase: float = 0.0) -> np.ndarray:
    """A smooth surface in [-1, 1] with features about `scale` metres across."""
    x, y = (x - BBOX[0]) / scale, (y - BBOX[1]) / scale
    return 0.6 * np.sin(x + phase) * np.cos(y / 0.7) + 0.4 * np.sin((x + y) / 2.3 + 2 * phase)


def storm_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the forest was felled in STORM_YEAR: an elongated patch in the north-east."""
    cx, cy = BBOX[0] + 33_000.0, BBOX[1] + 27_000.0
    return ((x - cx) / 6_000.0) ** 2 + ((y - cy) / 3_000.0) ** 2 < 1.0


def lake_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """No data over a lake in the south-west (every input has the hole)."""
    return (x - BBOX[0] - 12_000.0) ** 2 + (y - BBOX[1] - 9_000.0) ** 2 < 2_500.0**2


def base_age(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 70.0 + 45.0 * smooth(x, y, 9_000.0)


# --- writers -------------------------------------------------------------------------------


def write_cog(
    path: Path, lattice: Lattice, band: np.ndarray, nodata: float | int, name: str, **tags: str
) -> None:
    """A one-band Cloud-Optimized GeoTIFF; the band description names the variable."""
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy

    profile = {
        "driver": "GTiff", "width": lattice.width, "height": lattice.height, "count": 1,
        "dtype": band.dtype.name, "crs": lattice.crs, "transform": lattice.transform(),
        "nodata": nodata,
    }  # fmt: skip
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(band, 1)
            dataset.set_band_description(1, name)
            dataset.update_tags(**tags)
        with memory.open() as dataset:
            predictor = 3 if band.dtype.kind == "f" else 2
            options = {"compress": "deflate", "predictor": predictor, "blocksize": 256}
            copy(dataset, path, driver="COG", **options)


def write_netcdf(path: Path, dataset: Any, name: str, chunks: tuple[int, ...]) -> None:
    fill = np.float32(np.nan)
    encoding = {name: {"_FillValue": fill, "zlib": True, "complevel": 4, "chunksizes": chunks}}
    dataset.to_netcdf(path, engine="netcdf4", encoding=encoding)


def _geographic_dataset(
    lattice: Lattice,
    name: str,
    dims: tuple[str, ...],
    data: np.ndarray,
    attrs: dict[str, Any],
    coords: dict[str, Any],
) -> Any:
    """An EPSG:4326 dataset with CF lat/lon axes and a `spatial_ref` grid mapping."""
    import xarray as xr
    from pyproj import CRS

    wkt = CRS.from_epsg(4326).to_wkt()
    return xr.Dataset(
        {
            name: (dims, data, {**attrs, "grid_mapping": "spatial_ref"}),
            "spatial_ref": ((), np.int32(0), {"crs_wkt": wkt, "spatial_ref": wkt}),
        },
        coords={
            **coords,
            "lat": ("lat", lattice.ys, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lattice.xs, {"standard_name": "longitude", "units": "degrees_east"}),
        },
    )


def forest_type(folder: Path) -> Path:
    """Categorical uint8 in 250 m stands with 50 m speckle; the lake is nodata (0)."""
    lattice = projected_lattice(50.0)
    x, y = _in_3035(lattice)
    classes = np.digitize(smooth(x, y, 4_000.0, phase=1.0), [-0.35, 0.1, 0.5]).astype(np.uint8)
    classes = np.array([2, 3, 1, 4], np.uint8)[classes]
    stands = np.repeat(np.repeat(classes[::5, ::5], 5, 0), 5, 1)[: lattice.height, : lattice.width]
    rng = np.random.default_rng(SEED)
    speck = rng.random(stands.shape) < 0.03
    stands[speck] = rng.integers(1, 5, int(speck.sum()), dtype=np.uint8)
    stands[lake_mask(x, y)] = 0
    path = folder / "forest_type.tif"
    meanings = " ".join(FOREST_CLASSES.values())
    write_cog(
        path, lattice, stands, 0, "forest_type", flag_values="1 2 3 4", flag_meanings=meanings
    )
    return path


def forest_age(folder: Path) -> Path:
    """An ensemble of `MEMBERS` age estimates (years) that user code reduces to one layer."""
    lattice = geographic_lattice(0.0015)
    x, y = _in_3035(lattice)
    rng = np.random.default_rng(SEED + 1)
    base = base_age(x, y)
    members = [
        base + 6.0 * smooth(x, y, 3_000.0, phase=m) + rng.normal(0, 2.0, base.shape)
        for m in range(MEMBERS)
    ]
    data = np.clip(np.stack(members), 1, None).astype(np.float32)
    data[:, lake_mask(x, y)] = np.nan
    dataset = _geographic_dataset(
        lattice, "forest_age", ("member", "lat", "lon"), data,
        {"units": "years", "long_name": "forest age (ensemble)"},
        {"member": np.arange(1, MEMBERS + 1, dtype=np.int32)},
    )  # fmt: skip
    dataset.attrs["title"] = "Forest age ensemble (cubestac demo)"
    path = folder / "forest_age.nc"
    write_netcdf(path, dataset, "forest_age", (1, 128, 128))
    return path


def canopy_height(folder: Path) -> Path:
    lattice = projected_lattice(60.0)
    x, y = _in_3035(lattice)
    height = 32.0 * (1 - np.exp(-base_age(x, y) / 40.0))
    height = np.round(height, 1).astype(np.float32)
    height[lake_mask(x, y)] = np.nan
    path = folder / "canopy_height.tif"
    write_cog(
        path, lattice, height, math.nan, "canopy_height", TIFFTAG_DATETIME="2020:06:01 00:00:00"
    )
    return path


def biomass(folder: Path, year: int) -> Path:
    """Above-ground biomass (Mg/ha) of one year: grows 2 %/year, felled by the storm."""
    import xarray as xr

    lattice = geographic_lattice(0.002)
    x, y = _in_3035(lattice)
    age = base_age(x, y) + (year - YEARS[0])
    agb = 2.2 * age + 15.0 * smooth(x, y, 2_000.0, phase=0.5)
    if year >= STORM_YEAR:
        regrowth = 4.0 * (year - STORM_YEAR)  # Mg/ha since the storm
        agb = np.where(storm_mask(x, y), regrowth, agb)
    data = np.round(agb, 1).astype(np.float32)[None]
    data[:, lake_mask(x, y)] = np.nan
    times = np.array([f"{year}-07-01"], dtype="datetime64[ns]")
    dataset = _geographic_dataset(
        lattice, "agb", ("time", "lat", "lon"), data,
        {"units": "Mg/ha", "long_name": "above-ground biomass"},
        {"time": xr.Variable("time", times)},
    )  # fmt: skip
    path = folder / f"agb_{year}.nc"
    write_netcdf(path, dataset, "agb", (1, 128, 128))
    return path


# --- the static catalog --------------------------------------------------------------------


def _bbox(geometry: dict[str, Any]) -> list[float]:
    ring = np.asarray(geometry["coordinates"][0])
    return [round(v, 6) for v in (*ring.min(axis=0), *ring.max(axis=0))]


def _collection(collection_id: str, title: str, bbox: list[float], item_id: str) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": collection_id,
        "title": title,
        "description": f"{title}: generated input of the cubestac demo.",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [bbox]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", "2020-12-31T23:59:59Z"]]},
        },
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
            {"rel": "item", "href": f"./{item_id}/{item_id}.json", "type": "application/json"},
        ],
    }


def _item(
    collection_id: str, item_id: str, geometry: dict[str, Any], asset: dict[str, Any], **props: Any
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": props.pop("extensions", []),
        "id": item_id,
        "collection": collection_id,
        "geometry": geometry,
        "bbox": _bbox(geometry),
        "properties": {"datetime": "2020-06-01T00:00:00Z", **props},
        "links": [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        ],
        "assets": {"data": {"roles": ["data"], **asset}},
    }


CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"


def _forest_type_fields(data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Asset and item fields of the forest-type COG, read from the file as rio-stac does
    (`ingest.metadata.geotiff.read_grid`): grid, CRS and the band's data type and nodata, so
    readers place it and keep its classes uint8 without being told anything."""
    from catalogue.projection import PROJECTION_EXTENSION
    from ingest.metadata.geotiff import read_grid

    grid = read_grid(str(data / "forest_type.tif"))
    classes = [{"value": value, "name": name} for value, name in FOREST_CLASSES.items()]
    asset = {
        "href": "../../../data/forest_type.tif",
        "type": COG,
        "bands": [{**band, "classification:classes": classes} for band in grid.bands],
    }
    extensions = [PROJECTION_EXTENSION, CLASSIFICATION]
    return asset, {"extensions": extensions, **grid.projection}


def _forest_age_fields(data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Asset and item fields of the forest-age NetCDF: the datacube extension and grid, read
    from the file with the `files` harvester's reader (xstac + rioxarray)."""
    import fsspec

    from catalogue.extensions import DATACUBE_EXTENSION
    from catalogue.projection import PROJECTION_EXTENSION
    from ingest.metadata.datacube import read_netcdf

    info = read_netcdf(fsspec.filesystem("file"), str(data / "forest_age.nc"), True)
    asset = {"href": "../../../data/forest_age.nc", "type": NETCDF}
    props = {
        "extensions": [DATACUBE_EXTENSION, PROJECTION_EXTENSION],
        **info.projection,
        "cube:dimensions": info.dimensions,
        "cube:variables": info.variables,
    }
    return asset, props


def write_catalog(root: Path) -> Path:
    """`stac/catalog.json` -> forest-type and forest-age collections -> one item each; asset
    hrefs are relative (`../../../data/...`), as a catalog published next to its files.
    Items carry what their files say about their grid and data types."""
    data = root.parent / "data"
    entries: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
        "forest-type": (
            "Forest type",
            projected_lattice(50.0).footprint(),
            *_forest_type_fields(data),
        ),
        "forest-age": (
            "Forest age ensemble",
            geographic_lattice(0.0015).footprint(),
            *_forest_age_fields(data),
        ),
    }
    children = []
    for collection_id, (title, geometry, asset, props) in entries.items():
        item_id = f"{collection_id}-2020"
        folder = root / collection_id
        (folder / item_id).mkdir(parents=True, exist_ok=True)
        item = _item(collection_id, item_id, geometry, asset, **props)
        _dump(folder / item_id / f"{item_id}.json", item)
        _dump(folder / "collection.json", _collection(collection_id, title, item["bbox"], item_id))
        children.append({"rel": "child", "href": f"./{collection_id}/collection.json"})
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "demo-forest",
        "description": "Forest maps of the cubestac demo world.",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
        + [{**child, "type": "application/json"} for child in children],
    }
    _dump(root / "catalog.json", catalog)
    return root / "catalog.json"


def _dump(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1) + "\n")


# --- the world as a whole ------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Where the demo world is; `files` maps each file (relative path) to its SHA-256."""

    root: Path
    files: dict[str, str]
    created: bool

    @property
    def digest(self) -> str:
        """One digest of every file's content: what the cubes are built from."""
        text = json.dumps(self.files, sort_keys=True).encode()
        return hashlib.sha256(text).hexdigest()


def generate(root: Path) -> None:
    """Write every file of the world under `root` (which must not hold an older world)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "files" / "biomass").mkdir(parents=True, exist_ok=True)
    (root / "files" / "canopy").mkdir(parents=True, exist_ok=True)
    forest_type(root / "data")
    forest_age(root / "data")
    canopy_height(root / "files" / "canopy")
    for year in YEARS:
        biomass(root / "files" / "biomass", year)
    write_catalog(root / "stac")


def ensure_world(root: Path) -> World:
    """The world under `root`: kept when its manifest says it is this version and every file
    is there, else (re)generated. Files are never rewritten needlessly: their modification
    times are what the next harvest compares."""
    manifest = _read_manifest(root)
    if manifest is not None and manifest.get("version") == WORLD_VERSION:
        files = manifest.get("files") or {}
        if files and all((root / name).is_file() for name in files):
            return World(root, files, created=False)
    if root.exists():
        shutil.rmtree(root)
    generate(root)
    files = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    _dump(root / MANIFEST, {"version": WORLD_VERSION, "seed": SEED, "files": files})
    return World(root, files, created=True)


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        document = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
