"""``coachbot run``: the chat adapters configured in the environment and the HTTP app, in one process."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from bot.composition import build_grader, coach_config
from bot.engine import Coach
from bot.grading import RoleplayGrader
from bot.http import create_app
from bot.protocol import ChatAdapter
from bot.settings import Settings
from scheduler import memory
from storage.db import make_engine, write_session
from storage.locks import single_instance
from storage.models import utcnow
from storage.onboarding import purge_processed_updates
from storage.runner import StorageRunner
from storage.schema import upgrade_database

log = logging.getLogger(__name__)


class Service(Protocol):
    """A chat adapter as the process runs it: started in the app's lifespan, stopped on shutdown."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def started(self) -> bool: ...

    def routers(self) -> Sequence[APIRouter]: ...


def build_services(
    settings: Settings, *, engine: Engine, runner: StorageRunner, grader: RoleplayGrader
) -> list[Service]:
    """The adapters switched on by settings alone (Slack, Telegram); none means an API-only process.

    Each adapter gets its own engine (Coach) over the shared storage runner and grader.
    """
    services: list[Service] = []

    def coach_for(adapter: ChatAdapter) -> Coach:
        return Coach(
            engine=engine,
            runner=runner,
            adapter=adapter,
            grader=grader,
            memory_model=memory.make_scheduler(),
            config=coach_config(settings),
        )

    if settings.telegram_bot_token is not None:
        from bot.adapters.telegram.service import TelegramService

        services.append(
            TelegramService.from_settings(settings, engine=engine, runner=runner, coach_for=coach_for)
        )
    if settings.slack_bot_token is not None:
        from bot.adapters.slack.service import SlackService

        services.append(
            SlackService.from_settings(settings, engine=engine, runner=runner, coach_for=coach_for)
        )
    return services


PROCESSED_UPDATE_RETENTION = timedelta(days=14)
"""Platform event ids are kept this long: far beyond Slack's retries and Telegram's redelivery."""
MAINTENANCE_INTERVAL = timedelta(hours=6)


async def purge_old_updates(engine: Engine, runner: StorageRunner, *, now: datetime | None = None) -> int:
    """Forget platform event ids older than the retention period (the dedupe table must not grow forever)."""
    cutoff = (now or utcnow()) - PROCESSED_UPDATE_RETENTION

    def purge() -> int:
        with write_session(engine) as session:
            return purge_processed_updates(session, before=cutoff)

    return await runner.run(purge)


async def _maintenance(engine: Engine, runner: StorageRunner) -> None:
    while True:
        try:
            purged = await purge_old_updates(engine, runner)
            if purged:
                log.info("purged %d processed platform events", purged)
        except Exception:
            log.exception("maintenance failed; retrying later")
        await asyncio.sleep(MAINTENANCE_INTERVAL.total_seconds())


def build_app(
    settings: Settings,
    engine: Engine,
    services: Sequence[Service],
    runner: StorageRunner,
    *,
    on_shutdown: Callable[[], Awaitable[None]],
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        maintenance = asyncio.create_task(_maintenance(engine, runner))
        try:
            yield
        finally:
            maintenance.cancel()
            await on_shutdown()

    async def readiness() -> dict[str, bool]:
        return {service.name: service.started() for service in services}

    return create_app(
        engine=engine,
        runner=runner,
        api_tokens=[token.get_secret_value() for token in settings.api_tokens],
        default_timezone=settings.timezone,
        readiness=readiness,
        routers=[router for service in services for router in service.routers()],
        lifespan=lifespan,
    )


class StartedServices:
    """The chat services that started, each stopped once, in reverse.

    They start before the HTTP server (so an adapter that cannot start ends ``coachbot run`` with its
    :class:`~bot.protocol.AdapterStartError`, which the CLI prints as one line, instead of a traceback from
    the server) and stop in its shutdown, before it re-raises the signal that stopped it; whatever is still
    running stops on the way out.
    """

    def __init__(self) -> None:
        self._services: list[Service] = []

    @asynccontextmanager
    async def running(self, services: Sequence[Service]) -> AsyncIterator[None]:
        try:
            for service in services:
                await service.start()
                self._services.append(service)
                log.info("%s adapter started", service.name)
            yield
        finally:
            await self.stop()

    async def stop(self) -> None:
        while self._services:
            service = self._services.pop()
            try:
                await service.stop()
            except Exception:
                log.exception("%s adapter did not stop cleanly", service.name)


async def serve(settings: Settings, *, uvicorn_options: dict[str, Any] | None = None) -> None:
    """Migrate, take the SQLite instance lock, start the adapters and serve HTTP until stopped."""
    engine = make_engine(settings.database_url)
    try:
        with single_instance(engine):
            upgrade_database(engine)
            runner = StorageRunner()
            try:
                await _serve_with(settings, engine, runner, uvicorn_options)
            finally:
                runner.close()
    finally:
        engine.dispose()


async def _serve_with(
    settings: Settings, engine: Engine, runner: StorageRunner, uvicorn_options: dict[str, Any] | None
) -> None:
    """Build the adapters and the HTTP app over one engine and storage runner, then serve until stopped."""
    services = build_services(settings, engine=engine, runner=runner, grader=build_grader(settings))
    started = StartedServices()
    app = build_app(settings, engine, services, runner, on_shutdown=started.stop)
    # Everything loaded so far lives as long as the process: keep it out of the collector's full passes,
    # which otherwise walk it all and pause the event loop for tens of milliseconds (measured by
    # benchmarks/bench_answer_path.py).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level,
        access_log=False,
        **(uvicorn_options or {}),
    )
    log.info(
        "serving on http://%s:%s with %s",
        settings.http_host,
        settings.http_port,
        ", ".join(s.name for s in services) or "no chat adapter (API only)",
    )
    async with started.running(services):
        await uvicorn.Server(config).serve()
