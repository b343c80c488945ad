"""Telegram inside ``coachbot run``: lifecycle, the webhook route, and setting the webhook when it changed."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine
from telegram import Bot
from telegram.error import TelegramError

from bot.adapters.telegram.adapter import TelegramAdapter
from bot.engine import Coach
from bot.protocol import ChatAdapter
from bot.settings import Settings
from storage.runner import StorageRunner

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
WEBHOOK_PATH = "/telegram/webhook"


def fingerprinted_url(url: str, *, token: str, secret: str) -> str:
    """The webhook URL with a keyed fingerprint of the secret in its query.

    Telegram's getWebhookInfo returns the URL but never the secret, so a changed secret changes the URL we
    compare against, and setWebhook is called only when the URL or the secret changed. The fingerprint is
    an HMAC keyed with the bot token: it says nothing about the secret to anyone without the token.
    """
    fingerprint = hmac.new(token.encode(), secret.encode(), hashlib.sha256).hexdigest()[:16]
    parts = urlsplit(url)
    query = f"{parts.query}&v={fingerprint}" if parts.query else f"v={fingerprint}"
    return urlunsplit(parts._replace(query=query))


async def fetch_bot_username(*, token: str, base_url: str) -> str:
    """The bot's @username (getMe), for ``https://t.me/<username>?start=<code>`` invite links."""
    async with Bot(token=token, base_url=base_url) as bot:
        user = await bot.get_me()
    if not user.username:
        raise ValueError("the bot has no username")
    return user.username


class TelegramService:
    name = "telegram"

    def __init__(
        self,
        adapter: TelegramAdapter,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
        token: str,
    ) -> None:
        self.adapter = adapter
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._token = token

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        engine: Engine,
        runner: StorageRunner,
        coach_for: Callable[[ChatAdapter], Coach],
    ) -> TelegramService:
        assert settings.telegram_bot_token is not None
        token = settings.telegram_bot_token.get_secret_value()
        secret = (
            settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
        )
        adapter = TelegramAdapter(
            token=token,
            engine=engine,
            runner=runner,
            base_url=settings.telegram_api_base_url,
            webhook=settings.telegram_webhook_url is not None,
            max_messages_per_second=settings.telegram_max_messages_per_second,
        )
        adapter.attach(coach_for(adapter).handle)
        return cls(adapter, webhook_url=settings.telegram_webhook_url, webhook_secret=secret, token=token)

    async def start(self) -> None:
        await self.adapter.start()
        if self._webhook_url is not None and self._webhook_secret is not None:
            url = fingerprinted_url(self._webhook_url, token=self._token, secret=self._webhook_secret)
            try:
                await self.adapter.set_webhook_if_changed(url, self._webhook_secret)
            except BaseException as exc:
                await self.adapter.stop()  # the runtime stops only services that started
                if isinstance(exc, TelegramError):
                    raise self.adapter.start_error("TELEGRAM_WEBHOOK_URL", "setWebhook", exc) from exc
                raise

    async def stop(self) -> None:
        await self.adapter.stop()

    def started(self) -> bool:
        return self.adapter.running

    def routers(self) -> Sequence[APIRouter]:
        if self._webhook_url is None or self._webhook_secret is None:
            return ()
        router = APIRouter()
        expected = self._webhook_secret.encode()
        adapter = self.adapter

        @router.post(WEBHOOK_PATH, include_in_schema=False)
        async def telegram_webhook(request: Request) -> Response:
            offered = request.headers.get(SECRET_HEADER, "").encode()
            if not hmac.compare_digest(offered, expected):
                log.warning("refused a Telegram webhook call with a wrong or missing secret token")
                return Response(status_code=401)
            try:
                data = json.loads(await request.body())
                await adapter.process_webhook_update(data)
            except (ValueError, TypeError):
                log.warning("dropped a malformed Telegram webhook body")
                return Response(status_code=400)
            return Response(status_code=200)

        return (router,)
