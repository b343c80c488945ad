"""The worker-thread helper keeps storage calls off the event loop and bounded."""

from __future__ import annotations

import asyncio
import gc
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


async def _until(event: threading.Event, timeout: float = 5.0) -> None:
    """Yield to the loop until a worker thread sets ``event`` (without blocking the loop on it)."""
    deadline = time.monotonic() + timeout
    while not event.is_set():
        assert time.monotonic() < deadline, "the worker thread never got there"
        await asyncio.sleep(0.001)


async def test_stop_iteration_reaches_the_caller_as_runtime_error() -> None:
    """A future cannot carry StopIteration: it must surface as RuntimeError, not hang the caller."""
    runner = StorageRunner(limit=1)

    def exhausted() -> None:
        raise StopIteration("no more rows")

    try:
        with pytest.raises(RuntimeError, match="StopIteration") as raised:
            await asyncio.wait_for(runner.run(exhausted), timeout=5)
        assert isinstance(raised.value.__cause__, StopIteration)
        assert str(raised.value.__cause__) == "no more rows"
    finally:
        runner.close()


async def test_exceptions_and_base_exceptions_reach_the_caller_unchanged() -> None:
    """Only StopIteration is translated; anything else is the very object the function raised."""

    class Stop(BaseException):
        pass

    runner = StorageRunner(limit=1)
    missing = LookupError("missing")
    stop = Stop("stop")

    def raise_(error: BaseException) -> None:
        raise error

    try:
        with pytest.raises(LookupError) as looked_up:
            await asyncio.wait_for(runner.run(raise_, missing), timeout=5)
        assert looked_up.value is missing
        with pytest.raises(Stop) as stopped:
            await asyncio.wait_for(runner.run(raise_, stop), timeout=5)
        assert stopped.value is stop
        # The thread survived both and still serves calls.
        assert await asyncio.wait_for(runner.run(lambda: "still here"), timeout=5) == "still here"
    finally:
        runner.close()


def test_one_runner_serves_two_event_loops_in_turn_with_the_same_thread() -> None:
    """The runner outlives an ``asyncio.run`` (CLI commands, tests): results reach each loop, threads stay."""
    runner = StorageRunner(limit=2)
    seen: list[tuple[int, threading.Thread]] = []

    def where(n: int) -> tuple[int, threading.Thread]:
        return n * 2, threading.current_thread()

    async def calls(start: int) -> None:
        for n in range(start, start + 2):
            seen.append(await asyncio.wait_for(runner.run(where, n), timeout=5))

    try:
        asyncio.run(calls(0))
        asyncio.run(calls(10))
    finally:
        runner.close()
    assert [value for value, _ in seen] == [0, 2, 20, 22]
    threads = {thread for _, thread in seen}
    assert len(threads) == 1
    assert threads.pop() is not threading.current_thread()


async def test_sequential_calls_use_a_single_thread() -> None:
    """Threads start only as calls overlap: a caller awaiting one call at a time needs just one."""
    runner = StorageRunner(limit=4)
    try:
        threads = {await runner.run(threading.current_thread) for _ in range(20)}
    finally:
        runner.close()
    assert len(threads) == 1
    assert next(iter(threads)).name == "storage-1"


async def test_close_runs_the_queued_calls_then_ends_the_threads_and_refuses_new_calls() -> None:
    """Shutdown must not drop calls already queued, must not leave threads behind, and must refuse more."""
    runner = StorageRunner(limit=2)
    release = threading.Event()
    both_running = threading.Event()
    both_started = threading.Barrier(2, action=both_running.set, timeout=5)
    threads: set[threading.Thread] = set()
    lock = threading.Lock()

    def blocked(label: str) -> str:
        with lock:
            threads.add(threading.current_thread())
        both_started.wait()
        assert release.wait(5)
        return label

    def queued(label: str) -> str:
        with lock:
            threads.add(threading.current_thread())
        return label

    try:
        running = [asyncio.create_task(runner.run(blocked, f"b{n}")) for n in range(2)]
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(runner.run(queued, f"q{n}")) for n in range(3)]
        await asyncio.sleep(0)  # every call is now in the queue or on a thread
        await _until(both_running)
        release.set()
        runner.close(timeout=5)
    finally:
        release.set()

    assert {thread.name for thread in threads} == {"storage-1", "storage-2"}
    assert not any(thread.is_alive() for thread in threads)
    results = await asyncio.wait_for(asyncio.gather(*running, *waiting), timeout=5)
    assert results == ["b0", "b1", "q0", "q1", "q2"]
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(runner.run(queued, "late"), timeout=5)


async def test_a_call_cancelled_while_queued_never_runs() -> None:
    """A caller that gave up (timeout, disconnect) must not still write to the database later."""
    runner = StorageRunner(limit=1)
    release = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def blocked() -> str:
        started.set()
        assert release.wait(5)
        return "first"

    def record(label: str) -> str:
        ran.append(label)
        return label

    try:
        first = asyncio.create_task(runner.run(blocked))
        await _until(started)
        second = asyncio.create_task(runner.run(record, "second"))
        await asyncio.sleep(0)  # the second call is queued behind the first
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        assert await asyncio.wait_for(first, timeout=5) == "first"
        assert await asyncio.wait_for(runner.run(record, "third"), timeout=5) == "third"
    finally:
        release.set()
        runner.close()
    assert ran == ["third"]


async def test_a_thread_that_fails_to_start_does_not_hang_later_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of threads, the call fails loudly; once threads start again, calls complete instead of hanging."""
    runner = StorageRunner(limit=2)
    start = threading.Thread.start
    failures = 0

    def start_fails_once(thread: threading.Thread) -> None:
        nonlocal failures
        if thread.name.startswith("storage-") and failures == 0:
            failures += 1
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_fails_once)
    try:
        with pytest.raises(RuntimeError, match="can't start new thread"):
            await asyncio.wait_for(runner.run(lambda: "lost"), timeout=5)
        assert failures == 1
        assert await asyncio.wait_for(runner.run(lambda: "done"), timeout=5) == "done"
        assert await asyncio.wait_for(runner.run(threading.current_thread), timeout=5) is not (
            threading.current_thread()
        )
    finally:
        runner.close()


def test_a_garbage_collected_runner_stops_its_threads() -> None:
    """A runner dropped without ``close`` must not leave its idle threads waiting forever."""
    runner = StorageRunner(limit=1)
    thread = asyncio.run(runner.run(threading.current_thread))
    assert thread.is_alive()
    del runner
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


async def test_a_call_whose_caller_gave_up_still_occupies_its_thread_so_the_next_call_gets_another() -> None:
    """A caller that times out does not stop its query: the runner must not queue new calls behind it."""
    runner = StorageRunner(limit=2)
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(5)
        return "slow"

    try:
        abandoned = asyncio.create_task(runner.run(slow))
        await asyncio.wait_for(asyncio.to_thread(started.wait, 5), timeout=5)
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):
            await abandoned
        assert await asyncio.wait_for(runner.run(lambda: "next"), timeout=2) == "next"
        assert not release.is_set()
    finally:
        release.set()
        runner.close(timeout=5)
