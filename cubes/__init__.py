"""Building analysis-ready Zarr cubes from catalogue items and publishing them as STAC items."""
