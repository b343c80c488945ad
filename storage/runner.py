"""Run synchronous repository functions from async code without blocking the event loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from storage.db import read_session, write_session

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_CONCURRENCY = 4


class StorageRunner:
    """Runs storage calls in worker threads, at most ``limit`` at a time.

    The bound keeps a burst of inbound answers from opening more connections than the pool holds; the
    thread keeps a slow query from stalling every other conversation on the loop.
    """

    def __init__(self, *, limit: int = DEFAULT_CONCURRENCY) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._limit)
        async with self._semaphore:
            return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def read(self, engine: Engine, fn: Callable[[Session], R]) -> R:
        """``fn(session)`` in a read session, off the event loop."""

        def run() -> R:
            with read_session(engine) as session:
                return fn(session)

        return await self.run(run)

    async def write(self, engine: Engine, fn: Callable[[Session], R]) -> R:
        """``fn(session)`` in one write transaction (committed, or rolled back if it raises), off the loop."""

        def run() -> R:
            with write_session(engine) as session:
                return fn(session)

        return await self.run(run)
