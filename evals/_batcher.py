"""Collects the requests that concurrent inspect-ai samples make, and runs them as one batch.

inspect-ai runs every sample as its own coroutine, so a model sees one request at a time. The
first waiting request drains the queue: it lets the event loop run until arrivals pause, takes
everything pending, and runs it in a worker thread (torch releases the GIL, so the next batch
keeps filling meanwhile). One batch then holds a whole suite, and the engine can sort it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass
class _Slot:
    request: Any
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


class MicroBatcher(Generic[Req, Res]):
    def __init__(self, run: Callable[[list[Req]], list[Res]], quiet_s: float = 0.03, max_batch: int = 4096):
        self._run = run
        self.quiet_s = quiet_s
        self.max_batch = max_batch
        self._pending: list[_Slot] = []
        self._draining = False

    async def submit(self, request: Req) -> Res:
        slot = _Slot(request)
        self._pending.append(slot)
        if not self._draining:
            self._draining = True
            try:
                await self._drain()
            finally:
                self._draining = False
        await slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    async def _wait_for_quiet(self) -> None:
        seen = -1
        while seen != len(self._pending) and len(self._pending) < self.max_batch:
            seen = len(self._pending)
            await anyio.sleep(self.quiet_s)
            for _ in range(3):  # after a stall, let coroutines that became ready enqueue first
                await anyio.sleep(0)

    async def _drain(self) -> None:
        while self._pending:
            await self._wait_for_quiet()
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                results = await anyio.to_thread.run_sync(self._run, [s.request for s in batch])
            except Exception as exc:
                for s in batch:
                    s.error = exc
                    s.done.set()
                continue
            for s, r in zip(batch, results, strict=True):
                s.result = r
                s.done.set()
