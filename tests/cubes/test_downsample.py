"""Downsampling blocks and building levels lazily, checked against plain numpy references on
odd sizes, nodata at the edges and tiles that the factor does not divide (issue 15)."""

from __future__ import annotations

import math
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from cubes.downsample import average, mode
from cubes.levels import level_dataset, level_grids, timeseries_chunk


def reference_average(values: np.ndarray, factor: int, nodata: float | int | None) -> np.ndarray:
    height, width = values.shape[-2:]
    out_h, out_w = -(-height // factor), -(-width // factor)
    data = values.astype(np.float64)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        data = np.where(values == nodata, np.nan, data)
    padded = np.full((*values.shape[:-2], out_h * factor, out_w * factor), np.nan)
    padded[..., :height, :width] = data
    windows = padded.reshape(*values.shape[:-2], out_h, factor, out_w, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(windows, axis=(-3, -1))


def reference_mode(values: np.ndarray, factor: int, nodata: int) -> np.ndarray:
    height, width = values.shape
    out = np.full((-(-height // factor), -(-width // factor)), nodata, values.dtype)
    for row, col in np.ndindex(out.shape):
        window = values[row * factor : (row + 1) * factor, col * factor : (col + 1) * factor]
        valid = window[window != nodata]
        if valid.size:
            classes, counts = np.unique(valid, return_counts=True)
            out[row, col] = classes[np.argmax(counts)]
    return out


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("shape", [(37, 53), (8, 8), (1, 5)])
def test_average_skips_nan_and_pads_odd_edges(factor, shape) -> None:
    rng = np.random.default_rng(factor)
    values = rng.normal(100, 20, shape).astype(np.float32)
    values[rng.random(shape) < 0.3] = np.nan
    values[:, -1] = np.nan  # a whole edge column of nodata
    result = average(values, factor, math.nan)
    assert result.dtype == np.float32
    expected = reference_average(values, factor, math.nan)
    np.testing.assert_allclose(result, expected, rtol=1e-6, equal_nan=True)


def test_a_coarse_pixel_is_nodata_only_where_all_its_pixels_are() -> None:
    values = np.array([[1.0, np.nan, np.nan], [np.nan, np.nan, np.nan]], np.float32)
    np.testing.assert_array_equal(average(values, 2, math.nan), [[1.0, np.nan]])


def test_average_of_integers_with_a_nodata_value_stays_integer() -> None:
    values = np.array([[10, 11, -9999], [12, -9999, -9999], [7, 8, 9]], np.int16)
    result = average(values, 2, -9999)
    assert result.dtype == np.int16
    np.testing.assert_array_equal(result, [[11, -9999], [8, 9]])  # round(33/3), all nodata


def test_average_with_a_float_nodata_value_ignores_it() -> None:
    values = np.array([[-1.0, 4.0], [2.0, -1.0]], np.float32)
    np.testing.assert_array_equal(average(values, 2, -1.0), [[3.0]])


@pytest.mark.parametrize("factor", [2, 4])
def test_mode_ignores_nodata_and_keeps_the_class_set(factor) -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(1, 5, (23, 31), dtype=np.uint8)
    values[rng.random(values.shape) < 0.4] = 0
    values[-3:, :] = 0  # nodata rows at the bottom edge
    result = mode(values, factor, 0)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, reference_mode(values, factor, 0))
    assert set(np.unique(result)) <= {0, 1, 2, 3, 4}


def test_mode_breaks_ties_towards_the_smallest_class() -> None:
    values = np.array([[3, 2], [2, 3]], np.uint8)
    assert mode(values, 2, None).tolist() == [[2]]
    assert mode(np.array([[5, 0], [0, 0]], np.uint8), 2, 0).tolist() == [[5]]
    assert mode(np.zeros((2, 2), np.uint8), 2, 0).tolist() == [[0]]  # all nodata


def test_mode_over_leading_axes() -> None:
    values = np.stack([np.full((4, 4), 1, np.int32), np.full((4, 4), 2, np.int32)])
    assert mode(values, 2, -1).tolist() == [[[1, 1], [1, 1]], [[2, 2], [2, 2]]]


def test_level_grids_halve_down_to_one_tile() -> None:
    grids = level_grids((1000, 3001), (10.0, 0.0, 500.0, 0.0, -10.0, 9000.0), 256)
    assert [g.shape for g in grids] == [
        (1000, 3001), (500, 1501), (250, 751), (125, 376), (63, 188),
    ]  # fmt: skip
    assert grids[-1].transform == (160.0, 0.0, 500.0, 0.0, -160.0, 9000.0)
    assert grids[-1].gdal_transform == "500.0 160.0 0.0 9000.0 0.0 -160.0"
    assert [g.shape for g in level_grids((10, 10), (1, 0, 0, 0, -1, 0), 16)] == [(10, 10)]


@pytest.mark.parametrize("tile", [12, 16])
def test_a_level_built_lazily_over_tiles_matches_the_whole_array(tile) -> None:
    """Tile 12 is not a multiple of 8: chunks are regrouped so windows never straddle."""
    rng = np.random.default_rng(3)
    shape = (2, 37, 53)
    values = rng.normal(5, 1, shape).astype(np.float32)
    values[rng.random(shape) < 0.2] = np.nan
    classes = rng.integers(1, 4, shape[1:], dtype=np.uint8)
    full = xr.Dataset(
        {
            "v": (("time", "y", "x"), da.from_array(values, chunks=(1, tile, tile))),
            "c": (("y", "x"), da.from_array(classes, chunks=(tile, tile)), {"_FillValue": 0}),
        },
        coords={
            "time": [0, 1],
            "y": 100.0 - (np.arange(37) + 0.5),
            "x": 10.0 + (np.arange(53) + 0.5),
            "spatial_ref": ((), 0, {"GeoTransform": "10 1 0 100 0 -1"}),
        },
    )
    grids = level_grids((37, 53), (1.0, 0.0, 10.0, 0.0, -1.0, 100.0), tile)
    assert len(grids) >= 3
    for grid in grids[1:]:
        level = level_dataset(full, grid, {"c": "mode"}, {"v": math.nan, "c": 0}, tile)
        assert level["v"].chunks[1][0] == min(tile, grid.shape[0])
        np.testing.assert_allclose(
            level["v"].values, reference_average(values, grid.factor, math.nan),
            rtol=1e-6, equal_nan=True,
        )  # fmt: skip
        np.testing.assert_array_equal(level["c"].values, reference_mode(classes, grid.factor, 0))
        assert "_FillValue" not in level["c"].attrs  # moved to the encoding on write
        np.testing.assert_allclose(level["x"].values[:2], 10 + grid.factor * np.array([0.5, 1.5]))
        assert level["spatial_ref"].attrs["GeoTransform"] == grid.gdal_transform


def test_timeseries_chunk_keeps_a_chunk_of_the_whole_axis_small() -> None:
    def cube(steps: int, dtype: str) -> xr.Dataset:
        return xr.Dataset({"v": (("time", "y", "x"), np.zeros((steps, 1, 1), dtype))})

    assert timeseries_chunk(cube(3650, "float32"), 2048, None) == 16  # 3650*16*16*4 ~ 3.7 MB
    assert timeseries_chunk(cube(4, "float32"), 256, None) == 256  # no smaller than needed
    assert timeseries_chunk(cube(100_000, "float64"), 2048, None) == 8  # a floor
    assert timeseries_chunk(cube(10, "uint8"), 2048, 48) == 48  # as asked


@pytest.mark.parametrize("dtype", ["uint8", "int16"])
def test_modes_of_every_level_from_class_planes_equal_the_windows_modes(dtype) -> None:
    from cubes.downsample import modes

    rng = np.random.default_rng(11)
    values = rng.integers(1, 6, (45, 70)).astype(dtype)
    values[rng.random(values.shape) < 0.3] = 0
    values[:, :9] = 0  # a nodata band on the west edge
    chain = modes(values, 5, 0)  # windows up to 32 px: counts past uint8 from level 4
    assert chain is not None and len(chain) == 5
    for level, result in enumerate(chain, start=1):
        assert result.dtype == values.dtype
        np.testing.assert_array_equal(result, reference_mode(values, 2**level, 0))


def test_many_classes_fall_back_to_one_mode_per_level() -> None:
    from cubes.downsample import modes
    from cubes.levels import _all_levels

    values = np.arange(40 * 40, dtype=np.int32).reshape(40, 40) % 50
    assert modes(values, 2, -1) is None  # 50 classes: no planes
    two, four = _all_levels(values, (2, 4), "mode", -1)
    np.testing.assert_array_equal(two, reference_mode(values, 2, -1))
    np.testing.assert_array_equal(four, reference_mode(values, 4, -1))


@pytest.mark.parametrize("nodata", [None, 0, 1, 127, 128, 255, -1, -128, 300])
@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_8_bit_classes_found_by_comparisons_equal_the_histograms(nodata, dtype) -> None:
    """Few classes (a scan of the span between min and max, nodata set apart) or many (the
    histogram): the same sorted classes, nodata left out, at both ends of the byte range."""
    from cubes.downsample import _classes_of, _histogram_classes

    rng = np.random.default_rng(5)
    blocks = [
        np.array([[0, 255], [255, 1]], np.uint8),
        rng.integers(250, 256, (2, 9, 9)).astype(np.uint8),  # wraps past 255 in int8
        rng.integers(0, 5, (2, 9, 9)).astype(np.uint8),
        np.arange(256, dtype=np.uint8).reshape(16, 16),  # every value: the histogram
        np.full((3, 3), 255, np.uint8),
        np.zeros((0, 4), np.uint8),
    ]
    for block in (b.view(dtype) for b in blocks):
        found = _classes_of(block, None, nodata)
        assert found.dtype == block.dtype
        np.testing.assert_array_equal(found, _histogram_classes(block, nodata))


def test_modes_of_a_long_8_bit_class_map_with_nodata_at_255() -> None:
    from cubes.downsample import modes

    rng = np.random.default_rng(3)
    values = rng.choice(np.array([0, 1, 7, 255], np.uint8), (6, 37, 50), p=[0.5, 0.2, 0.1, 0.2])
    values[2] = 255  # a step holding nothing
    chain = modes(values, 2, 255)
    assert chain is not None
    for level, result in enumerate(chain, start=1):
        for step, plane in enumerate(values):
            np.testing.assert_array_equal(result[step], reference_mode(plane, 2**level, 255))


@pytest.mark.parametrize(
    ("dtype", "fill", "empty", "kept"),
    [
        ("uint8", 255, 255, 1),
        ("float32", float("nan"), float("nan"), 0.0),
        ("float32", 0.0, 0.0, -0.0),  # zarr's rule: -0.0 is not a fill of 0.0
    ],
)
def test_the_pass_leaves_out_blocks_of_fill_only(tmp_path, dtype, fill, empty, kept) -> None:
    """Blocks holding only the fill value are not written (a missing chunk reads as the
    fill anyway); every other block is, and reads back as written."""
    import zarr

    from cubes.pyramid import FillSkippingTarget

    array = zarr.create_array(
        str(tmp_path / "a.zarr"), shape=(4, 4), chunks=(2, 2), dtype=dtype, fill_value=fill,
        zarr_format=2,
    )  # fmt: skip
    target = FillSkippingTarget(array)
    block = np.full((2, 2), empty, dtype)
    target[0:2, 0:2] = block
    other = block.copy()
    other[1, 1] = kept
    target[2:4, 2:4] = other
    da.store([da.from_array(np.full((2, 4), empty, dtype), chunks=2)], [target], regions=[
        (slice(0, 2), slice(0, 4))
    ])  # fmt: skip
    chunks = sorted(p.name for p in (tmp_path / "a.zarr").iterdir() if not p.name.startswith("."))
    assert chunks == ["1.1"]
    expected = np.full((4, 4), empty, dtype)
    expected[3, 3] = kept
    read = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[:]
    np.testing.assert_array_equal(read, expected)
    assert np.signbit(read[3, 3]) == np.signbit(np.asarray(kept, dtype))
