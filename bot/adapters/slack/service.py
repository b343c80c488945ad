"""Slack inside ``coachbot run``: lifecycle, the events route (HTTP mode) and binding people by email."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine

from bot.adapters.slack.adapter import SlackAdapter
from bot.engine import Coach
from bot.protocol import ChatAdapter
from bot.settings import Settings
from storage.runner import StorageRunner

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class SlackService:
    name = "slack"

    def __init__(self, adapter: SlackAdapter, *, socket_mode: bool) -> None:
        self.adapter = adapter
        self._socket_mode = socket_mode

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        engine: Engine,
        runner: StorageRunner,
        coach_for: Callable[[ChatAdapter], Coach],
    ) -> SlackService:
        assert settings.slack_bot_token is not None
        adapter = SlackAdapter(
            token=settings.slack_bot_token.get_secret_value(),
            engine=engine,
            runner=runner,
            signing_secret=settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None,
            app_token=settings.slack_app_token.get_secret_value() if settings.slack_app_token else None,
            api_url=settings.slack_api_url,
        )
        adapter.set_handler(coach_for(adapter).handle)
        return cls(adapter, socket_mode=settings.slack_app_token is not None)

    async def start(self) -> None:
        """Start the adapter (:class:`~bot.adapters.slack.adapter.SlackStartError` if Slack refuses a token),
        then bind roster people by email. The runtime stops only services that started, so if binding fails
        (or start-up is cancelled) the adapter is stopped here, leaving no Socket Mode connection open."""
        await self.adapter.start()
        try:
            bound = await self.adapter.bind_by_email()
        except BaseException:
            await self.adapter.stop()
            raise
        if bound:
            log.info("bound %d roster people to their Slack accounts by email", len(bound))

    async def stop(self) -> None:
        await self.adapter.stop()

    def started(self) -> bool:
        return self.adapter.started

    def routers(self) -> Sequence[APIRouter]:
        if self._socket_mode:
            return ()
        router = APIRouter()
        handler = self.adapter.request_handler

        @router.post(EVENTS_PATH, include_in_schema=False)
        async def slack_events(request: Request) -> Response:
            """Events, interactivity and slash commands on one URL; Bolt verifies the signature."""
            return await handler.handle(request)

        return (router,)
