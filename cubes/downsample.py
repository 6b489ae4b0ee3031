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


def valid_mask(block: np.ndarray, nodata: Nodata) -> np.ndarray:
    """Pixels holding data: not NaN (floats) and not the nodata value."""
    valid = ~np.isnan(block) if block.dtype.kind == "f" else np.ones(block.shape, bool)
    if nodata is not None and not _is_nan(nodata):
        valid &= block != nodata
    return valid


def average(block: np.ndarray, factor: int, nodata: Nodata) -> np.ndarray:
    """Mean of each `factor` x `factor` window over its valid pixels."""
    valid = valid_mask(block, nodata)
    values = np.where(valid, block, 0).astype(np.float64)
    sums = _window_sum(_padded(values, factor, 0.0), factor)
    counts = _window_sum(_padded(valid, factor, False), factor)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    if block.dtype.kind in "iu":
        info = np.iinfo(block.dtype)
        means = np.clip(np.rint(np.nan_to_num(means)), info.min, info.max)
    return np.where(counts > 0, means, _fill(nodata, block.dtype)).astype(block.dtype)


def mode(block: np.ndarray, factor: int, nodata: Nodata) -> np.ndarray:
    """The most frequent valid value of each window (smallest on ties)."""
    valid = valid_mask(block, nodata)
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
