"""`processing: module:function` hooks, imported from the CONFIG's folder.

Where the hook runs: on each item's dataset in its *native* grid, after opening and before
regridding (like `xr.open_mfdataset(preprocess=...)`). DESIGN.md draws user code after
aggregation; we run it earlier because the case it exists for -- reducing a 20-member
ensemble to one layer -- then costs one warp instead of twenty, and a linear reduction
commutes with bilinear resampling anyway. Variables arrive as stored (no CF masking), with
`_FillValue` in their attributes when they have one.

The module is pickled by value (cloudpickle), so dask worker processes that do not have
the CONFIG's folder on `sys.path` can still run functions the hook maps over blocks.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cloudpickle
import xarray as xr

from cubes.errors import UserCodeError

Hook = Callable[[xr.Dataset], xr.Dataset]


def load_hook(reference: str, config_dir: Path | None, cube: str, where: str) -> Hook:
    """Import `module:function`; the CONFIG's folder comes first on the import path."""
    module_name, _, function_name = reference.partition(":")
    try:
        with _import_path(config_dir):
            _forget_if_shadowed(module_name, config_dir)
            importlib.invalidate_caches()
            module = importlib.import_module(module_name)
    except BaseException as error:  # noqa: BLE001 - sys.exit() at import is the user's code too
        raise UserCodeError(
            f"cannot import {module_name!r} for processing {reference!r}: "
            f"{type(error).__name__}: {error}",
            cube=cube,
            where=where,
        ) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UserCodeError(
            f"processing {reference!r}: {module_name} has no function {function_name!r}",
            cube=cube,
            where=where,
        )
    if config_dir is not None and _is_under(module, config_dir):
        cloudpickle.register_pickle_by_value(module)
    return function


def run_hook(hook: Hook, reference: str, dataset: xr.Dataset, cube: str, where: str) -> xr.Dataset:
    """Call the hook; exceptions and results other than a Dataset are reported as the
    user's code, with cube, input and item named. `SystemExit` and `KeyboardInterrupt`
    included: the hook runs in a build thread, where no signal is ever delivered, so they
    can only come from the code itself, and they must not end the whole run."""
    try:
        result = hook(dataset)
    except BaseException as error:  # noqa: BLE001 - user code may raise anything
        raise UserCodeError(
            f"processing {reference!r} raised {type(error).__name__}: {error}",
            cube=cube,
            where=where,
        ) from error
    if not isinstance(result, xr.Dataset):
        raise UserCodeError(
            f"processing {reference!r} returned {type(result).__name__}, expected xarray.Dataset",
            cube=cube,
            where=where,
        )
    return result


@contextmanager
def _import_path(folder: Path | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:
            pass


def _forget_if_shadowed(module_name: str, folder: Path | None) -> None:
    """A long-lived process may have imported a same-named module from another CONFIG's
    folder; this CONFIG's own file wins."""
    cached = sys.modules.get(module_name)
    if cached is None or folder is None or _is_under(cached, folder):
        return
    top = module_name.split(".")[0]
    if (folder / f"{top}.py").exists() or (folder / top / "__init__.py").exists():
        for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
            del sys.modules[name]


def _is_under(module: object, folder: Path) -> bool:
    path = getattr(module, "__file__", None)
    return path is not None and Path(path).resolve().is_relative_to(folder.resolve())
