"""Downsampling one block of pixels by a whole factor: average for continuous variables,
mode for classes (issue 15, "Multi-resolution cubes").

Both work on the last two axes (y, x) of a numpy block and ignore nodata: a coarse pixel is
the mean (or the most frequent class) of its valid fine pixels, and nodata only where none
of them is valid. A block whose size is not a multiple of the factor (the grid's last row
or column of windows) is padded with invalid pixels, so edge windows average what they
hold. Values stay in the block's own dtype: integers are rounded back after averaging, and a
mode is always one of the window's own values, so classes stay classes. Ties between classes
go to the smallest class value, so the result does not depend on the order pixels come in.
"""

from __future__ import annotations

import math

import numpy as np

Nodata = float | int | None
MAX_COUNTED_CLASSES = 64  # above: windows are sorted instead of counted
MAX_PLANE_CLASSES = 16  # up to this many classes in a block, levels count per class plane
SCANNED_RANGE = 16  # 8-bit values spanning fewer: classes found by comparisons


def valid_mask(block: np.ndarray, nodata: Nodata) -> np.ndarray:
    """Pixels holding data: not NaN (floats) and not the nodata value."""
    valid = ~np.isnan(block) if block.dtype.kind == "f" else np.ones(block.shape, bool)
    if nodata is not None and not _is_nan(nodata):
        valid &= block != nodata
    return valid


def average(block: np.ndarray, factor: int, nodata: Nodata) -> np.ndarray:
    """Mean of each `factor` x `factor` window over its valid pixels."""
    if factor > 1 and factor & (factor - 1) == 0:
        return averages(block, factor.bit_length() - 1, nodata)[-1]
    valid = valid_mask(block, nodata)
    sums = _padded(np.where(valid, block, 0).astype(np.float64), factor, 0)
    counts = _padded(valid, factor, False)
    return _means(_window_sum(sums, factor), _window_sum(counts, factor), block.dtype, nodata)


def averages(block: np.ndarray, levels: int, nodata: Nodata) -> list[np.ndarray]:
    """Means of the windows of 2, 4, ..., 2**levels pixels a side, each over its valid
    pixels of `block`.

    Sums and counts go by halving (pairs of rows, then pairs of columns), so the windows
    of 2**k pixels are summed from those of 2**(k-1): exact, since sums and counts add up,
    and a few strided additions per pixel for all levels together. The pairwise sums stay
    accurate in float32, the working type of float32 data (float64 otherwise)."""
    valid = valid_mask(block, nodata)
    top = 2**levels
    work = np.float32 if block.dtype in (np.float16, np.float32) else np.float64
    sums = _padded(np.where(valid, block, 0).astype(work, copy=False), top, 0)
    counts = _padded(valid, top, False).astype(np.int32 if top > 128 else np.int16)
    height, width = block.shape[-2:]
    result = []
    for level in range(1, levels + 1):
        sums, counts = _halved(sums), _halved(counts)
        rows, cols = coarse_length(height, 2**level), coarse_length(width, 2**level)
        result.append(
            _means(sums[..., :rows, :cols], counts[..., :rows, :cols], block.dtype, nodata)
        )
    return result


def _means(sums: np.ndarray, counts: np.ndarray, dtype: np.dtype, nodata: Nodata) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        means = np.clip(np.rint(np.nan_to_num(means)), info.min, info.max)
    return np.where(counts > 0, means, _fill(nodata, dtype)).astype(dtype)


def mode(block: np.ndarray, factor: int, nodata: Nodata) -> np.ndarray:
    """The most frequent valid value of each window (smallest on ties).

    Class maps hold few classes: every window's histogram is counted in one `bincount` over
    the block (classes numbered 0..n-1, nodata and padding n). Many distinct values
    (identifiers, say) would make those histograms too big: then windows are sorted and
    their longest run taken."""
    valid = valid_mask(block, nodata)
    if factor == 2:
        return _mode_of_four(block, valid, nodata)
    classes = np.unique(block[valid])
    if classes.size > MAX_COUNTED_CLASSES:
        return _mode_by_sorting(block, valid, factor, nodata)
    slots = classes.size + 1  # the last one counts nodata
    codes = _padded(_class_codes(block, valid, classes), factor, slots - 1)
    *lead, height, width = codes.shape
    rows, cols = height // factor, width // factor
    windows = int(np.prod(lead, dtype=np.int64)) * rows * cols
    kind = np.int32 if windows * slots < 2**31 else np.int64
    window = (np.arange(height, dtype=kind)[:, None] // factor) * cols + (
        np.arange(width, dtype=kind)[None, :] // factor
    )
    planes = np.arange(windows // (rows * cols), dtype=kind).reshape(*lead, 1, 1)
    index = (window + planes * (rows * cols)) * slots + codes
    counts = np.bincount(index.ravel(), minlength=windows * slots)
    counts = counts.reshape(*lead, rows, cols, slots)[..., :-1]
    if not classes.size:
        return np.full(counts.shape[:-1], _fill(nodata, block.dtype), block.dtype)
    best = np.argmax(counts, axis=-1)
    empty = np.take_along_axis(counts, best[..., None], axis=-1)[..., 0] == 0
    return np.where(empty, _fill(nodata, block.dtype), classes[best]).astype(block.dtype)


def modes(block: np.ndarray, levels: int, nodata: Nodata) -> list[np.ndarray] | None:
    """Modes of the windows of 2, 4, ..., 2**levels pixels a side, for a block of at most
    MAX_PLANE_CLASSES classes (None for more: see `mode`).

    One count plane per class, summed by halving like `averages`: the counts of a window
    of 2**k pixels are those of its four 2**(k-1) sub-windows added up, so every level is
    an exact mode of its level-0 pixels, and the levels after the first cost a quarter of
    the one before. The first class (the smallest) with the highest count wins."""
    integers = block.dtype.kind in "iu"  # their only invalid value is nodata, never a class
    valid = None if integers and block.dtype.itemsize == 1 else valid_mask(block, nodata)
    classes = _classes_of(block, valid, nodata)
    if classes.size > MAX_PLANE_CLASSES:
        return None
    top = 2**levels
    planes = [
        _padded(block == value if integers else (block == value) & valid, top, False)
        for value in classes
    ]
    planes = [plane.view(np.uint8) for plane in planes]
    height, width = block.shape[-2:]
    fill = _fill(nodata, block.dtype)
    result = []
    for level in range(1, levels + 1):
        if level == 4:  # 4**4 = 256 pixels per window: past uint8
            planes = [plane.astype(np.uint16 if levels <= 8 else np.uint32) for plane in planes]
        planes = [_halved(plane) for plane in planes]
        rows, cols = coarse_length(height, 2**level), coarse_length(width, 2**level)
        window = (..., slice(rows), slice(cols))
        if not planes:
            result.append(np.full(block.shape[:-2] + (rows, cols), fill, block.dtype))
            continue
        best = planes[0][window]
        winner = np.full(best.shape, classes[0], block.dtype)  # the class itself, no index
        for value, plane in zip(classes[1:], planes[1:], strict=True):
            counts = plane[window]
            np.copyto(winner, value, where=counts > best)
            best = np.maximum(best, counts)
        result.append(np.where(best > 0, winner, fill).astype(block.dtype))
    return result


def _classes_of(block: np.ndarray, valid: np.ndarray | None, nodata: Nodata) -> np.ndarray:
    """The valid values of a block, sorted (`valid` None: 8-bit integers, nodata left out).

    8-bit values spanning fewer than SCANNED_RANGE values (a class map's few classes,
    nodata set apart) are found by a min, a max and one comparison per candidate: numpy
    runs those without the GIL, while `bincount` (the general case) holds it and widens
    every byte to 64 bits, which made it the costliest step of a 39-step map's levels."""
    if valid is not None:
        return np.unique(block[valid])
    if not block.size:
        return np.empty(0, block.dtype)
    info = np.iinfo(block.dtype)
    skip = nodata is not None and not _is_nan(nodata) and info.min <= nodata <= info.max
    # bytes turned so that nodata is 255 (the others keep their cyclic order below it), or
    # without nodata so that the smallest value is 0
    start = (int(nodata) + 1) & 0xFF if skip else int(info.min) & 0xFF  # type: ignore[arg-type]
    turned = block.view(np.uint8) - np.uint8(start) if start else block.view(np.uint8)
    least = int(turned.min())
    most = int((turned + np.uint8(1)).max()) - 1 if skip else int(turned.max())
    if most - least < SCANNED_RANGE:  # a few comparisons: cheaper than a histogram
        found = [v for v in range(least, most + 1) if (turned == v).any()]
        values = np.array([(v + start) & 0xFF for v in found], np.uint8).view(block.dtype)
        return np.sort(values)
    return _histogram_classes(block, nodata)


def _histogram_classes(block: np.ndarray, nodata: Nodata) -> np.ndarray:
    """The values of an 8-bit block, nodata left out, from one histogram."""
    low = int(np.iinfo(block.dtype).min)
    counts = np.bincount(block.view(np.uint8).ravel(), minlength=256)
    if block.dtype == np.int8:
        counts = np.roll(counts, 128)  # bytes 128..255 are -128..-1
    present = np.flatnonzero(counts) + low
    if nodata is not None and not _is_nan(nodata):
        present = present[present != nodata]
    return present.astype(block.dtype)


def _mode_of_four(block: np.ndarray, valid: np.ndarray, nodata: Nodata) -> np.ndarray:
    """2 x 2 windows: each valid pixel counts its valid equals among the other three (six
    comparisons per window); the most frequent value wins, the smallest on ties. No
    histogram, a few passes over the block."""
    fill = _fill(nodata, block.dtype)
    values, flags = _padded(block, 2, fill), _padded(valid, 2, False)
    corners = [(slice(r, None, 2), slice(c, None, 2)) for r in (0, 1) for c in (0, 1)]
    pixels = [values[..., rows, cols] for rows, cols in corners]
    valids = [flags[..., rows, cols] for rows, cols in corners]
    counts = [np.where(ok, 1, -8).astype(np.int8) for ok in valids]  # invalid: never wins
    for i in range(4):
        for j in range(i + 1, 4):
            same = (pixels[i] == pixels[j]) & valids[i] & valids[j]
            counts[i] += same
            counts[j] += same
    best, best_count = pixels[0], counts[0]
    for pixel, count in zip(pixels[1:], counts[1:], strict=True):
        better = (count > best_count) | ((count == best_count) & (pixel < best))
        best = np.where(better, pixel, best)
        best_count = np.maximum(best_count, count)
    return np.where(best_count > 0, best, fill).astype(block.dtype)


def _class_codes(block: np.ndarray, valid: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each pixel's class number (0..n-1), n where it is not valid: a lookup table for
    8/16-bit integers, a binary search otherwise."""
    missing = classes.size
    if block.dtype.kind in "iu" and block.dtype.itemsize <= 2:
        low = int(np.iinfo(block.dtype).min)
        table = np.full(2 ** (8 * block.dtype.itemsize), missing, np.int32)
        table[classes.astype(np.int64) - low] = np.arange(classes.size, dtype=np.int32)
        shifted = block.astype(np.int64) - low if low else block
        return table[shifted]
    codes = np.searchsorted(classes, block).astype(np.int32)
    return np.where(valid, codes, missing)


def _mode_by_sorting(
    block: np.ndarray, valid: np.ndarray, factor: int, nodata: Nodata
) -> np.ndarray:
    padded_valid = _padded(valid, factor, False)
    keys = _padded(block.astype(np.int64), factor, 0)
    invalid = np.iinfo(np.int64).max  # sorts after every class
    keys = np.where(padded_valid, keys, invalid)
    windows = np.sort(_windows(keys, factor), axis=-1)
    size = windows.shape[-1]
    index = np.arange(size)
    starts = np.ones(windows.shape, bool)
    starts[..., 1:] = windows[..., 1:] != windows[..., :-1]
    run_start = np.maximum.accumulate(np.where(starts, index, 0), axis=-1)
    runs = np.where(windows == invalid, 0, index - run_start + 1)
    best = np.argmax(runs, axis=-1)[..., None]
    modes = np.take_along_axis(windows, best, axis=-1)[..., 0]
    empty = np.take_along_axis(runs, best, axis=-1)[..., 0] == 0
    fill = _fill(nodata, block.dtype)
    return np.where(empty, fill, modes).astype(block.dtype)


def coarse_length(length: int, factor: int) -> int:
    return -(-length // factor)


def _fill(nodata: Nodata, dtype: np.dtype) -> float | int:
    if dtype.kind != "f":
        # an integer window without nodata always holds a pixel: 0 is never used then
        return 0 if nodata is None or _is_nan(nodata) else nodata
    return math.nan if nodata is None else nodata


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _padded(array: np.ndarray, factor: int, value: float | int | bool) -> np.ndarray:
    height, width = array.shape[-2:]
    pad_y = coarse_length(height, factor) * factor - height
    pad_x = coarse_length(width, factor) * factor - width
    if not (pad_y or pad_x):
        return array
    widths = [(0, 0)] * (array.ndim - 2) + [(0, pad_y), (0, pad_x)]
    return np.pad(array, widths, constant_values=value)


def _halved(array: np.ndarray) -> np.ndarray:
    """Sums of 2 x 2 windows (even sizes)."""
    rows = array[..., 0::2, :] + array[..., 1::2, :]
    return rows[..., 0::2] + rows[..., 1::2]


def _window_sum(array: np.ndarray, factor: int) -> np.ndarray:
    *lead, height, width = array.shape
    shaped = array.reshape(*lead, height // factor, factor, width // factor, factor)
    return shaped.sum(axis=(-3, -1), dtype=np.float64)


def _windows(array: np.ndarray, factor: int) -> np.ndarray:
    """(..., H, W) -> (..., H/f, W/f, f*f): each window's pixels on the last axis."""
    *lead, height, width = array.shape
    shaped = array.reshape(*lead, height // factor, factor, width // factor, factor)
    shaped = np.moveaxis(shaped, -3, -2)
    return shaped.reshape(*lead, height // factor, width // factor, factor * factor)
