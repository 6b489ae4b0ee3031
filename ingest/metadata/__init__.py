"""Reading what data files say about themselves (GeoTIFF, NetCDF, Zarr) and when they are."""
