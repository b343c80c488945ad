"""Run synchronous repository functions from async code without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from storage.db import read_session, write_session

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_CONCURRENCY = 4


@dataclass
class _Workers:
    """The runner's threads and their queue, kept apart from the runner so its finalizer can stop them.

    ``unfinished`` counts calls queued or running, until a thread has finished them (a call whose caller
    was cancelled still occupies its thread); only the event loop's thread changes it.
    """

    jobs: queue.SimpleQueue[_Job | None] = field(default_factory=queue.SimpleQueue)
    threads: list[threading.Thread] = field(default_factory=list)
    unfinished: int = 0

    def stop(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


@dataclass
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    call: Callable[[], Any]
    workers: _Workers


class StorageRunner:
    """Runs storage calls in worker threads, at most ``limit`` at a time.

    The bound keeps a burst of inbound answers from opening more connections than the pool holds; the
    threads keep a slow query from stalling every other conversation on the loop. Jobs go to the threads
    through one queue and results come back with one ``call_soon_threadsafe``: the answer path crosses
    threads once per answer, and ``asyncio.to_thread``'s chained futures measured 40-60 µs more per
    crossing (``benchmarks/bench_answer_path.py``). Threads start as calls overlap, up to ``limit``, and
    stop on :meth:`close` or when the runner is garbage-collected.
    """

    def __init__(self, *, limit: int = DEFAULT_CONCURRENCY) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._workers = _Workers()
        self._closed = False
        self._finalizer = weakref.finalize(self, self._workers.stop)

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._closed:
            raise RuntimeError("the storage runner is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        workers = self._workers
        if workers.unfinished >= len(workers.threads) and len(workers.threads) < self._limit:
            self._start_thread()
        workers.unfinished += 1
        workers.jobs.put(_Job(loop, future, lambda: fn(*args, **kwargs), workers))
        return await future

    def close(self, *, timeout: float = 10.0) -> None:
        """Refuse new calls, and wait up to ``timeout`` seconds for the queued ones to run.

        The threads are daemons, so a call stuck past the timeout does not keep the process alive; its
        transaction is rolled back with the connection.
        """
        self._closed = True
        self._finalizer()
        self._workers.join(timeout)

    def _start_thread(self) -> None:
        number = len(self._workers.threads) + 1
        thread = threading.Thread(
            target=_work, args=(self._workers.jobs,), name=f"storage-{number}", daemon=True
        )
        thread.start()
        self._workers.threads.append(thread)

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


def _work(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        _run(job)
        del job  # an idle thread keeps nothing of the last call (its loop, result or traceback) alive


def _run(job: _Job) -> None:
    if job.future.cancelled():
        _settle(job, _set_result, None)  # nobody waits, but the job is finished
        return
    try:
        result = job.call()
    except StopIteration as exc:
        # A future cannot hold StopIteration (it would end the awaiting coroutine): as in generators.
        error = RuntimeError("storage call raised StopIteration")
        error.__cause__ = exc
        _settle(job, _set_exception, error)
    except BaseException as exc:  # handed to the awaiting coroutine, which re-raises it
        _settle(job, _set_exception, exc)
    else:
        _settle(job, _set_result, result)


def _settle(job: _Job, setter: Callable[[asyncio.Future[Any], Any], None], value: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
        job.loop.call_soon_threadsafe(_finish, job, setter, value)


def _finish(job: _Job, setter: Callable[[asyncio.Future[Any], Any], None], value: Any) -> None:
    """On the event loop's thread: the job no longer occupies a thread; its caller gets the outcome."""
    job.workers.unfinished -= 1
    if not job.future.done():
        setter(job.future, value)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    future.set_exception(exc)
