"""Harvesting external sources into the catalogue (static STAC, STAC APIs, data files)."""
