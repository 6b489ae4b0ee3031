"""The STAC extension schema URIs the project writes, and the datacube/raster data types.

One list, so that harvested items (`ingest`) and cube items (`cubes`) declare the same
versions of the same extensions. The projection extension lives in `catalogue.projection`
with the reasons for its two versions.
"""

from __future__ import annotations

DATACUBE_EXTENSION = "https://stac-extensions.github.io/datacube/v2.3.0/schema.json"
RASTER_EXTENSION = "https://stac-extensions.github.io/raster/v2.0.0/schema.json"
ZARR_EXTENSION = "https://stac-extensions.github.io/zarr/v1.1.0/schema.json"
XARRAY_EXTENSION = "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json"

# `data_type` values of datacube v2.3.0 and raster v2.0.0 (both take "other" for the rest):
# https://github.com/stac-extensions/datacube/blob/v2.3.0/README.md#data-types
STAC_DATA_TYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float16", "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64"}
)


def stac_data_type(dtype_name: str) -> str:
    """The STAC `data_type` of a numpy dtype name: itself when STAC names it, else "other"."""
    return dtype_name if dtype_name in STAC_DATA_TYPES else "other"
