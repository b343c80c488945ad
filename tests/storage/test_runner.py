"""The worker-thread helper keeps storage calls off the event loop and bounded."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from storage.runner import StorageRunner


async def test_runs_calls_in_worker_threads_with_their_arguments() -> None:
    runner = StorageRunner(limit=2)

    def where(label: str, *, suffix: str) -> tuple[str, int]:
        return label + suffix, threading.get_ident()

    label, thread_id = await runner.run(where, "a", suffix="b")
    assert label == "ab"
    assert thread_id != threading.get_ident()


async def test_never_runs_more_calls_at_once_than_its_limit() -> None:
    runner = StorageRunner(limit=3)
    lock = threading.Lock()
    running = 0
    peak = 0

    def slow() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    await asyncio.gather(*(runner.run(slow) for _ in range(12)))
    assert peak == 3


async def test_the_event_loop_keeps_running_during_a_slow_call() -> None:
    runner = StorageRunner(limit=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await runner.run(time.sleep, 0.1)
    task.cancel()
    assert ticks > 5


async def test_errors_propagate_to_the_caller() -> None:
    def fails() -> None:
        raise LookupError("missing")

    with pytest.raises(LookupError, match="missing"):
        await StorageRunner().run(fails)


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StorageRunner(limit=0)
