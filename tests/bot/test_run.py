"""`coachbot run` as a user starts it: serves /healthz, stops on SIGINT, refuses a second SQLite process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Database


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(database_url: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "COACHBOT_HTTP_PORT": str(port),
        "COACHBOT_API_TOKENS": "token-for-the-run-test-0001",
    }
    for name in ("SLACK_BOT_TOKEN", "TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(port: int, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"coachbot run exited early:\n{output}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("coachbot run did not answer /healthz within 30 s")


@pytest.fixture
def running(db: Database, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = start(db.url, port, tmp_path)
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_run_serves_health_readiness_and_stops_cleanly_on_sigint(
    running: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = running
    assert wait_healthy(port, process).json() == {"status": "ok"}
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert ready.json() == {"ready": True, "checks": {"database": True}}
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0
    output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in output
    assert "token-for-the-run-test-0001" not in output


def test_a_second_run_on_the_same_sqlite_file_refuses_to_start(sqlite_db: Database, tmp_path: Path) -> None:
    port = free_port()
    first = start(sqlite_db.url, port, tmp_path)
    try:
        wait_healthy(port, first)
        second = start(sqlite_db.url, free_port(), tmp_path)
        output, _ = second.communicate(timeout=30)
        assert second.returncode == 1
        assert "another coachbot run is using" in output
        assert "Traceback" not in output
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=15)
