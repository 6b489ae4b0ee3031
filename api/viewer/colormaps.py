"""The colours of the viewer's colormap picker, taken from rio-tiler, which the tiles use
for the same names: the legend's gradient is the tiles' colours, not a copy to keep in sync.
"""

from __future__ import annotations

from functools import cache

from rio_tiler.colormap import cmap

# the picker's choices, in its order (any rio-tiler name also works in a tile URL)
NAMES = ("viridis", "magma", "inferno", "cividis", "terrain", "rdylgn", "ylgn", "blues", "gray")
STOPS = 32  # colours per map: a smooth CSS gradient, a small document


@cache
def colormap_stops() -> dict[str, list[str]]:
    """Each picker colormap as `STOPS` evenly spaced `#rrggbb` colours (first = low end)."""
    stops: dict[str, list[str]] = {}
    for name in NAMES:
        table = cmap.get(name)
        indices = [round(i * 255 / (STOPS - 1)) for i in range(STOPS)]
        stops[name] = ["#{:02x}{:02x}{:02x}".format(*table[i][:3]) for i in indices]
    return stops
