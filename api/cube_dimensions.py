"""Picking a position along a cube's other dimensions (an ensemble `member`, a `band`):
one rule for the map tiles and the EDR queries, so the same query parameter selects the
same slice in both."""

from __future__ import annotations

import xarray as xr

from catalogue.errors import InvalidInputError


def dimension_index(dataset: xr.Dataset, dim: str, requested: str | None) -> int:
    """The index along `dim` that `requested` names: a coordinate value (matched as text),
    else an index; the first when nothing is asked. Anything else is a 400 listing the
    values."""
    size = dataset.sizes[dim]
    if requested is None:
        return 0
    if dim in dataset.coords:
        labels = [str(value) for value in dataset[dim].values.tolist()]
        if requested in labels:
            return labels.index(requested)
    else:
        labels = [str(position) for position in range(size)]
    if requested.isdigit() and int(requested) < size:
        return int(requested)
    raise InvalidInputError(
        f"{dim}={requested!r} is not a value of dimension {dim!r}: one of "
        f"{', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''} (or an index 0 to "
        f"{size - 1})"
    )
