"""Cube items served as maps: XYZ/WMTS tiles, TileJSON and WMTS capabilities (README "Map
tiles"; DESIGN.md "Serving what cubes hold")."""
