"""The documents that describe an item's map layers: TileJSON 3.0.0 and OGC WMTS 1.0
capabilities (REST encoding, one layer per variable, the time dimension).

Zoom range: the maximum zoom is the one whose pixels match the full resolution, the
minimum the one where the whole cube fits about one tile (where the coarsest level of a
multi-resolution store serves it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from morecantile import TileMatrixSet
from rasterio.warp import transform_bounds

from api.maps.selection import time_values
from api.maps.source import MapSource
from catalogue.times import rfc3339

WMTS_NS = "http://www.opengis.net/wmts/1.0"
OWS_NS = "http://www.opengis.net/ows/1.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
TIME_DIMENSION = "Time"  # the dimension's identifier, and `{Time}` in the URL template
ET.register_namespace("", WMTS_NS)
ET.register_namespace("ows", OWS_NS)
ET.register_namespace("xlink", XLINK_NS)


def zoom_range(source: MapSource, tms: TileMatrixSet) -> tuple[int, int]:
    west, south, east, north = source.bounds()
    left, _, right, _ = transform_bounds(source.crs, tms.rasterio_crs, west, south, east, north)
    ratio = abs(right - left) / abs(east - west)
    full = source.full
    tile_width = tms.matrix(tms.minzoom).tileWidth
    finest = full.resolution * ratio
    coarsest = finest * max(full.height, full.width) / tile_width
    maxzoom = tms.zoom_for_res(finest)
    minzoom = min(maxzoom, tms.zoom_for_res(coarsest))
    return minzoom, maxzoom


def tilejson(
    source: MapSource,
    tms: TileMatrixSet,
    tiles_url: str,
    query: Sequence[tuple[str, str]],
    name: str,
    tile_name: str = "{y}.png",
) -> dict[str, object]:
    """TileJSON 3.0.0 for `tiles_url` (ending in `/tiles/{tms}`), `query` carried over;
    `tile_name` is the last part of the path (`{y}@2x.webp`...)."""
    minzoom, maxzoom = zoom_range(source, tms)
    bbox = [float(v) for v in source.cube.item.get("bbox") or _wgs84_bounds(source)][:4]
    if len(bbox) != 4:
        bbox = list(_wgs84_bounds(source))
    suffix = f"?{urlencode(list(query))}" if query else ""
    return {
        "tilejson": "3.0.0",
        "name": name,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{tiles_url}/{{z}}/{{x}}/{tile_name}{suffix}"],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": bbox,
        "center": [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2, minzoom],
    }


def _wgs84_bounds(source: MapSource) -> tuple[float, float, float, float]:
    return transform_bounds(source.crs, "EPSG:4326", *source.bounds(), densify_pts=21)


@dataclass(frozen=True)
class WmtsLayer:
    """One layer: its identifier (the variable), title and tile URL template (with
    {TileMatrix}/{TileCol}/{TileRow}, and {Time} when it has a time dimension)."""

    identifier: str
    title: str
    template: str
    has_time: bool


def wmts_capabilities(
    source: MapSource,
    tms: TileMatrixSet,
    layers: Sequence[WmtsLayer],
    self_url: str,
    title: str,
) -> bytes:
    """WMTS 1.0.0 capabilities (OGC 07-057r7, RESTful encoding)."""
    root = ET.Element(_wmts("Capabilities"), {"version": "1.0.0"})
    service = ET.SubElement(root, _ows("ServiceIdentification"))
    _text(service, _ows("Title"), title)
    _text(service, _ows("ServiceType"), "OGC WMTS")
    _text(service, _ows("ServiceTypeVersion"), "1.0.0")
    contents = ET.SubElement(root, _wmts("Contents"))
    _, maxzoom = zoom_range(source, tms)
    bounds = _wgs84_bounds(source)
    times = [rfc3339(moment, seconds=True) for moment in time_values(source.cube.full_resolution)]
    for layer in layers:
        _layer(contents, layer, tms, bounds, times if layer.has_time else [])
    _tile_matrix_set(contents, tms, maxzoom)
    ET.SubElement(root, _wmts("ServiceMetadataURL"), {_xlink("href"): self_url})
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _layer(
    contents: ET.Element,
    layer: WmtsLayer,
    tms: TileMatrixSet,
    bounds: tuple[float, float, float, float],
    times: list[str],
) -> None:
    element = ET.SubElement(contents, _wmts("Layer"))
    _text(element, _ows("Title"), layer.title)
    box = ET.SubElement(element, _ows("WGS84BoundingBox"), {"crs": "urn:ogc:def:crs:OGC:2:84"})
    _text(box, _ows("LowerCorner"), f"{bounds[0]} {bounds[1]}")
    _text(box, _ows("UpperCorner"), f"{bounds[2]} {bounds[3]}")
    _text(element, _ows("Identifier"), layer.identifier)
    style = ET.SubElement(element, _wmts("Style"), {"isDefault": "true"})
    _text(style, _ows("Identifier"), "default")
    _text(element, _wmts("Format"), "image/png")
    if times:
        dimension = ET.SubElement(element, _wmts("Dimension"))
        _text(dimension, _ows("Identifier"), TIME_DIMENSION)
        _text(dimension, _ows("UOM"), "ISO8601")
        _text(dimension, _wmts("Default"), times[-1])
        for value in times:
            _text(dimension, _wmts("Value"), value)
    link = ET.SubElement(element, _wmts("TileMatrixSetLink"))
    _text(link, _wmts("TileMatrixSet"), str(tms.id))
    ET.SubElement(
        element,
        _wmts("ResourceURL"),
        {"format": "image/png", "resourceType": "tile", "template": layer.template},
    )


def _tile_matrix_set(contents: ET.Element, tms: TileMatrixSet, maxzoom: int) -> None:
    element = ET.SubElement(contents, _wmts("TileMatrixSet"))
    _text(element, _ows("Identifier"), str(tms.id))
    _text(element, _ows("SupportedCRS"), _crs_urn(tms))
    for zoom in range(tms.minzoom, min(tms.maxzoom, maxzoom) + 1):
        matrix = tms.matrix(zoom)
        entry = ET.SubElement(element, _wmts("TileMatrix"))
        _text(entry, _ows("Identifier"), matrix.id)
        _text(entry, _wmts("ScaleDenominator"), repr(matrix.scaleDenominator))
        origin = " ".join(repr(float(v)) for v in matrix.pointOfOrigin)
        _text(entry, _wmts("TopLeftCorner"), origin)
        _text(entry, _wmts("TileWidth"), str(matrix.tileWidth))
        _text(entry, _wmts("TileHeight"), str(matrix.tileHeight))
        _text(entry, _wmts("MatrixWidth"), str(matrix.matrixWidth))
        _text(entry, _wmts("MatrixHeight"), str(matrix.matrixHeight))


def _crs_urn(tms: TileMatrixSet) -> str:
    """`urn:ogc:def:crs:EPSG::3857` for an EPSG CRS (what WMTS 1.0 clients expect)."""
    epsg = tms.rasterio_crs.to_epsg()
    if epsg is not None:
        return f"urn:ogc:def:crs:EPSG::{epsg}"
    return str(tms.crs.srs)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _wmts(tag: str) -> str:
    return f"{{{WMTS_NS}}}{tag}"


def _ows(tag: str) -> str:
    return f"{{{OWS_NS}}}{tag}"


def _xlink(tag: str) -> str:
    return f"{{{XLINK_NS}}}{tag}"
