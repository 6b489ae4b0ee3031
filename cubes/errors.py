"""One error root for cube building; every message names the cube and, where known, the input.

A failing cube never stops the others (DESIGN.md, "Bad input gets a clear error and loses
nothing"), so the runner catches `CubeError` per cube and records its message in the jobs
table and the final status table; the message therefore has to stand on its own.
"""

from __future__ import annotations


class CubeError(Exception):
    """Root of every error that cube building raises on purpose."""

    def __init__(self, message: str, *, cube: str | None = None, where: str | None = None):
        self.cube = cube
        self.where = where
        prefix = " ".join(part for part in (f"cube {cube!r}" if cube else "", where or "") if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.detail = message


class GridError(CubeError):
    """The target grid cannot be built (unknown CRS, empty bbox)."""


class InputError(CubeError):
    """An input cannot be resolved or opened: no items, missing asset/variable, no CRS."""


class UserCodeError(CubeError):
    """A `processing: module:function` hook failed to import, raised, or returned junk."""


class OutputError(CubeError):
    """The cube cannot be written to or published under the cube root."""


def input_label(index: int, collection: str) -> str:
    """How messages name an input: by its position in CONFIG (1-based) and its collection."""
    return f"input {index + 1} ({collection})"
