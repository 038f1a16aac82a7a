"""Group commit: many tasks each submit one item, and whatever queued up while the
previous flush ran goes out in the next one — one database transaction or one publish
for many actions, with no added wait when the load is light."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """`await submit(item)` returns `flush([...])`'s result for that item."""

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        max_size: int = 256,
    ) -> None:
        self._flush = flush
        self._max_size = max_size
        self._queued: list[tuple[Item, asyncio.Future[Result]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queued:
                batch = self._queued[: self._max_size]
                del self._queued[: self._max_size]
                try:
                    results = await self._flush([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._draining = None
            # Cancelled (the engine stops): nobody may wait forever on a flush that won't come.
            for _, future in [*batch, *self._queued]:
                if not future.done():
                    future.cancel()
            self._queued = []
