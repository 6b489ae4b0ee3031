"""`async with` for the ingest's long-lived readers (harvesters, `Upstream`).

Each holds something for the length of a harvest (an HTTP session, an API client, a file
system) and says what in `open` and `close`; entering and leaving is written once here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Resource:
    """Opened on `async with` entry and closed on exit, whether or not the body failed."""

    async def open(self) -> None:
        """Acquire what the body of `async with` needs; nothing by default."""

    async def close(self) -> None:
        """Release what `open` acquired; nothing by default."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
