"""Pinning the private internals that cubestac patches for speed.

Each patch relies on the exact shape of code it does not own (a private helper, a
private method, the defaults of a generated function). requirements.lock pins those
libraries; these checks make an upgrade that changes what a patch relies on fail loudly,
naming the patch to revisit, instead of silently losing the speed-up or the fix.
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from typing import Any


def source_digest(code: Any) -> str:
    """A short digest of `code`'s source, indentation removed."""
    source = textwrap.dedent(inspect.getsource(code))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def assert_source_unchanged(code: Any, digest: str, patch: str) -> None:
    """Fail, naming `patch`, when `code` is not the source the patch was written against."""
    found = source_digest(code)
    assert found == digest, (
        f"{code.__module__}.{code.__qualname__} changed (source digest {found}, "
        f"expected {digest}): re-read it and revisit {patch} before updating the digest"
    )
