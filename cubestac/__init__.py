"""The `cubestac` command: wires the catalogue, the API, ingest and cubes together."""
