"""Cube items shaped as `cubes.to_item` publishes them (datacube extension v2.3.0: x/y
spatial dimensions with `axis`, `step` and `reference_system`; a temporal dimension with an
ISO 8601 `step` or its `values`; variables with `dimensions`, `type`, `unit`), beside
non-cube scenes, and an independent reading of the cube properties for checking filters."""

from __future__ import annotations

from typing import Any

from tests.helpers import make_item

DATACUBE = "https://stac-extensions.github.io/datacube/v2.3.0/schema.json"


def _spatial(axis: str, step: float, crs: int) -> dict[str, Any]:
    return {"type": "spatial", "axis": axis, "extent": [0.0, 3000.0], "step": step,
            "reference_system": crs}  # fmt: skip


def cube_item(
    item_id: str,
    variables: dict[str, str | None],
    resolution: float,
    time_step: str | None,
    crs: int = 3035,
    extra_dimensions: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A cube item: `variables` maps names to units (None: no unit)."""
    dimensions: dict[str, Any] = {
        "x": _spatial("x", resolution, crs),
        "y": _spatial("y", -resolution, crs),
    }
    time: dict[str, Any] = {"type": "temporal", "extent": ["2010-01-01T00:00:00Z", None]}
    time |= {"step": time_step} if time_step else {"values": ["2010-01-01T00:00:00Z"]}
    dimensions["time"] = time
    for name in extra_dimensions:
        dimensions[name] = {"type": "ensemble", "values": [0, 1]}
    names = ["time", *extra_dimensions, "y", "x"]
    cube_variables = {
        name: {"dimensions": names, "type": "data", "data_type": "float32", "nodata": "nan"}
        | ({"unit": unit} if unit else {})
        for name, unit in variables.items()
    }
    item = make_item(
        item_id, "cubes", **{"cube:dimensions": dimensions, "cube:variables": cube_variables}
    )
    item["stac_extensions"] = [DATACUBE]
    return item


def catalogue_items() -> dict[str, list[dict[str, Any]]]:
    """collection -> items: three cubes, two scenes, and an item whose `cube:variables`
    is no object (a cube item with no variable names)."""
    cubes = [
        cube_item("agb-yearly", {"agb": "Mg/ha", "agb_sd": "Mg/ha"}, 30.0, "P1Y"),
        cube_item("forest-age", {"forest_age": "years", "forest_type": None}, 100.0, None),
        cube_item("ndvi-monthly", {"ndvi": "1", "agb": "t/ha"}, 0.01, "P1M", 4326, ("member",)),
    ]
    scenes = [make_item(f"scene-{i}", "scenes", **{"eo:cloud_cover": i * 10}) for i in range(2)]
    odd = [make_item("odd", "odd", **{"cube:variables": "agb"})]
    return {"cubes": cubes, "scenes": scenes, "odd": odd}


def facts(item: dict[str, Any]) -> dict[str, Any] | None:
    """The cube properties read in Python (None: not a cube item)."""
    properties = item["properties"]
    variables = properties.get("cube:variables")
    dimensions = properties.get("cube:dimensions")
    if variables is None and dimensions is None:
        return None
    variables = variables if isinstance(variables, dict) else {}
    dimensions = dimensions if isinstance(dimensions, dict) else {}
    steps = {d.get("type"): d.get("step") for d in dimensions.values() if d.get("axis") != "y"}
    return {
        "cube:variable_names": list(variables),
        "cube:variable_units": [v["unit"] for v in variables.values() if "unit" in v],
        "cube:dimension_names": list(dimensions),
        "cube:time_step": steps.get("temporal"),
        "cube:resolution": steps.get("spatial"),
    }
