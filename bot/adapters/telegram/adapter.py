"""The Telegram adapter: python-telegram-bot's ``Application`` run inside the caller's event loop.

Lifecycle (never ``run_polling()``/``run_webhook()``, which own the loop and its signals)::

    adapter = TelegramAdapter(token=..., engine=..., runner=..., base_url=..., webhook=False)
    coach = Coach(..., adapter=adapter, ...)
    adapter.attach(coach.handle)
    await adapter.start()   # initialize() (getMe), setMyCommands, start_polling() unless webhook, start()
    ...
    await adapter.stop()    # updater.stop(), stop() (waits for running engine tasks), shutdown()

In webhook mode (``webhook=True``, built with ``.updater(None)``) the HTTP route checks
``X-Telegram-Bot-Api-Secret-Token`` itself and hands the JSON body to :meth:`process_webhook_update`,
which only puts ``Update.de_json(data, bot)`` on the application's ``update_queue``: the request is
acknowledged at once and the engine works on the update in a task afterwards.

Every update the adapter acts on is recorded with ``claim_update`` (platform ``telegram``, key
``update:<update_id>``) before the engine sees it, so a replayed update (a webhook retry, a restart
before the polling offset was confirmed) or a concurrent duplicate reaches the engine once. Ignored
updates and updates from people coachbot does not know write nothing; the latter get the engine's
"ask your admin" reply.

A document becomes a :class:`FileEvent`: one larger than :data:`MAX_FILE_BYTES` (by the ``file_size``
Telegram reports) is refused before anything is downloaded or written; otherwise, once the update is
claimed, the file is fetched (``getFile``, then ``<base_file_url><token>/<file_path>``) and handed to the
engine with its bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from telegram import BotCommand, ForceReply, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application, BaseRateLimiter, ContextTypes, TypeHandler

from bot import replies
from bot.adapters.telegram.translate import (
    PLATFORM,
    WORKSPACE,
    Document,
    Inbound,
    callback_query_id,
    keyboard,
    message_ref,
    parse_message_ref,
    render_html,
    translate_update,
)
from bot.events import MAX_FILE_BYTES, FileEvent, InboundEvent, TextEvent
from bot.protocol import AdapterStartError
from scheduler.messages import Choice, Message, bold, message
from scheduler.sender import Address
from storage import learning, onboarding
from storage.db import write_session
from storage.models import utcnow
from storage.runner import StorageRunner

log = logging.getLogger(__name__)
audit = logging.getLogger("coachbot.audit")

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
ALLOWED_UPDATES = ("message", "callback_query")
"""All coachbot acts on; Telegram then does not even send the rest (``setWebhook``/``getUpdates``)."""
COMMANDS = (
    ("quiz", "The next question now (quiz TOPIC for one topic)"),
    ("stats", "Your week: Capability, Effort, Agility, Initiative"),
    ("leaderboard", "Your team's points this week"),
    ("log", "Log sales activity: log visit 3"),
    ("pause", "Pause daily sessions (pause until YYYY-MM-DD)"),
    ("resume", "Resume daily sessions"),
    ("settings", "Your time zone and session time"),
    ("help", "What coachbot can do"),
)
CAPTION_LIMIT = 1024
INVITE_REFUSED = message(
    "That invite link is not valid any more — it may have expired or been used. "
    "Ask your coachbot admin for a new one."
)
ANSWER_PLACEHOLDER = "Your answer…"
"""Shown in the input field of a ForceReply (at most 64 characters)."""

EventHandler = Callable[[InboundEvent], Awaitable[None]]


def file_too_large(filename: str) -> Message:
    return message(
        f"Sorry, {filename} is too large: I can take files of up to {MAX_FILE_BYTES // 1_048_576} MB. "
        "Nothing was loaded."
    )


def download_failed(filename: str) -> Message:
    return message(
        f"Sorry, I could not fetch {filename} from Telegram. Nothing was loaded — please send it again."
    )


def file_url_for(base_url: str) -> str:
    """The file download base matching an API base: ``https://host/bot`` → ``https://host/file/bot``.

    The last ``/bot`` segment (which PTB appends the token to, or which holds ``{token}``) gets ``/file``
    in front of it, as https://core.telegram.org/bots/api#getfile documents for the official server.
    """
    index = base_url.rfind("/bot")
    if index < 0:
        return base_url.rstrip("/") + "/file/bot"
    return f"{base_url[:index]}/file{base_url[index:]}"


def welcome(name: str) -> Message:
    greeting = message("Welcome, ", bold(name), "! Your Telegram is now connected to coachbot.\n\n")
    return Message((*greeting.spans, *replies.HELP.spans))


def _seconds(exc: RetryAfter) -> float:
    """``RetryAfter.retry_after`` is an int or a timedelta depending on PTB settings (and warns as an int)."""
    value: Any = getattr(exc, "_retry_after", None)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, int | float) else 1.0


class PacedRateLimiter(BaseRateLimiter[None]):
    """One message a chat every ``per_chat_interval`` seconds and ``max_per_second`` overall; waits out
    ``RetryAfter`` and tries again (at most ``max_retries`` times, each wait at most ``max_retry_wait``).

    Only requests that name a ``chat_id`` (sending and editing messages) are paced; ``answerCallbackQuery``,
    ``getMe`` and the webhook calls go at once (``getUpdates`` never passes through a rate limiter). Any
    other error, such as ``Forbidden`` from a rep who blocked the bot, is raised at once and not retried.
    """

    def __init__(
        self,
        *,
        max_per_second: float = 30.0,
        per_chat_interval: float = 1.0,
        max_retries: int = 3,
        max_retry_wait: float = 120.0,
    ) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        self._global_interval = 1.0 / max_per_second
        self._chat_interval = max(0.0, per_chat_interval)
        self._max_retries = max_retries
        self._max_retry_wait = max_retry_wait
        self._global_next = 0.0
        self._chat_sent: dict[str, float] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._lock = asyncio.Lock()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        self._chat_sent.clear()
        self._chat_locks.clear()

    async def _wait_for_turn(self, chat: str) -> None:
        """Wait until the chat's last message is ``per_chat_interval`` old and an overall slot is due.

        One message of a chat waits at a time, and the interval is measured from when the previous one
        actually went out (after its own wait for an overall slot), so a chat never gets two messages
        closer together than its interval; other chats are not held up by it.
        """
        loop = asyncio.get_running_loop()
        lock = self._chat_locks.setdefault(chat, asyncio.Lock())
        async with lock:
            last = self._chat_sent.get(chat)
            if last is not None:
                await asyncio.sleep(max(0.0, last + self._chat_interval - loop.time()))
            await asyncio.sleep(await self._reserve_global())
            now = loop.time()
            self._chat_sent[chat] = now
        if len(self._chat_sent) > 10_000:
            idle = [k for k, sent in self._chat_sent.items() if sent + self._chat_interval < now]
            for key in idle:
                if not self._chat_locks[key].locked():
                    del self._chat_sent[key], self._chat_locks[key]

    async def _reserve_global(self) -> float:
        loop = asyncio.get_running_loop()
        async with self._lock:
            now = loop.time()
            at = max(now, self._global_next)
            self._global_next = at + self._global_interval
            return at - now

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        chat = None if chat_id is None else str(chat_id)
        attempt = 0
        while True:
            if chat is not None:
                await self._wait_for_turn(chat)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                attempt += 1
                wait = min(_seconds(exc), self._max_retry_wait)
                if attempt > self._max_retries or endpoint == "answerCallbackQuery":
                    raise  # a late answer to a button press is refused by Telegram anyway
                log.warning("Telegram flood control on %s: retrying in %.0f s", endpoint, wait)
                await asyncio.sleep(wait)


@dataclass(frozen=True)
class _Decision:
    """What the claim transaction found: who sent the update and whether it is new."""

    known: bool
    fresh: bool
    reply_to_delivery: int | None = None


class TelegramAdapter:
    """Implements :class:`bot.protocol.ChatAdapter` for Telegram and turns updates into engine events."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        token: str,
        engine: Engine,
        runner: StorageRunner,
        base_url: str = DEFAULT_BASE_URL,
        base_file_url: str | None = None,
        webhook: bool = False,
        max_messages_per_second: float = 30.0,
        per_chat_interval: float = 1.0,
        poll_timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._runner = runner
        self._clock = clock
        self._webhook = webhook
        self._poll_timeout = poll_timeout
        self._handler: EventHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.rate_limiter = PacedRateLimiter(
            max_per_second=max_messages_per_second, per_chat_interval=per_chat_interval
        )
        builder = (
            Application.builder()
            .token(token)
            .base_url(base_url)
            .base_file_url(base_file_url or file_url_for(base_url))
            .rate_limiter(self.rate_limiter)
        )
        # Polling: PTB's default pool of one connection for getUpdates is still held by the in-flight long
        # poll when stop() sends its final getUpdates to confirm the last offset, so that call timed out and
        # logged an error on every shutdown. A second connection lets it through.
        builder = builder.updater(None) if webhook else builder.get_updates_connection_pool_size(2)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))

    # --- lifecycle ------------------------------------------------------------------------------

    def attach(self, handler: EventHandler) -> None:
        """Where events go: the engine's ``Coach.handle`` (the engine needs the adapter first)."""
        self._handler = handler

    @property
    def running(self) -> bool:
        return bool(self.application.running)

    async def start(self) -> None:
        """``initialize()`` (getMe), register the commands, start polling (unless webhook), ``start()``.

        Any failure raises :class:`AdapterStartError` naming the setting to check (``TELEGRAM_BOT_TOKEN``
        for a refused token, else ``TELEGRAM_API_BASE_URL``) and leaves nothing running.
        """
        app = self.application
        try:
            await app.initialize()
        except InvalidToken as exc:  # its message quotes the token: not repeated here
            refused = "TELEGRAM_BOT_TOKEN: Telegram refused it at getMe (Unauthorized)"
            raise AdapterStartError(refused) from exc
        except TelegramError as exc:
            raise self.start_error("TELEGRAM_API_BASE_URL", "getMe", exc) from exc
        step = "setMyCommands"
        try:
            await app.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
            if app.updater is not None:
                step = "getUpdates"
                await app.updater.start_polling(
                    timeout=int(self._poll_timeout), allowed_updates=list(ALLOWED_UPDATES)
                )
            await app.start()
        except TelegramError as exc:
            await self.stop()
            raise self.start_error("TELEGRAM_API_BASE_URL", step, exc) from exc

    def start_error(self, setting: str, method: str, exc: TelegramError) -> AdapterStartError:
        """Telegram's reason, without the bot token (it sits in request URLs an error may quote)."""
        reason = exc.message.replace(self.application.bot.token, "<token>")
        return AdapterStartError(f"{setting}: Telegram failed at {method} ({reason})")

    async def stop(self) -> None:
        """The reverse of :meth:`start`; waits for engine tasks that are running."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued update has been handled (for tests and orderly shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < 3:
            if loop.time() > deadline:
                raise TimeoutError("Telegram updates still being handled")
            if self._tasks:
                quiet = 0
                await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - loop.time()))
            elif not self.application.update_queue.empty():
                quiet = 0
                await asyncio.sleep(0.01)
            else:
                quiet += 1
                await asyncio.sleep(0.01)

    # --- webhook mode ---------------------------------------------------------------------------

    async def process_webhook_update(self, data: Mapping[str, Any]) -> None:
        """Queue an update the HTTP route received (after it checked the secret token).

        Raises ``ValueError`` for a body that is not an update (the route answers 400); nothing is written.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("update_id"), int):
            raise ValueError("not a Telegram update: no integer update_id")
        try:
            update = Update.de_json(dict(data), self.application.bot)
        except Exception as exc:
            raise ValueError(f"malformed Telegram update: {type(exc).__name__}") from None
        await self.application.update_queue.put(update)

    async def set_webhook_if_changed(self, url: str, secret: str, *, force: bool = False) -> bool:
        """Call setWebhook only when getWebhookInfo shows another URL (or with ``force``).

        The Bot API never returns the secret token, so a changed ``TELEGRAM_WEBHOOK_SECRET`` with the same
        URL cannot be detected here: the caller passes ``force=True`` when it knows the secret changed (for
        example by comparing a hash of it that it keeps), and one process (the leader) makes this call.
        """
        bot = self.application.bot
        info = await bot.get_webhook_info()
        if info.url == url and not force:
            return False
        await bot.set_webhook(url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))
        log.info("Telegram webhook set")
        return True

    # --- inbound --------------------------------------------------------------------------------

    async def _on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Runs in PTB's update loop: only start a task, so the next update is not held up."""
        if not isinstance(update, Update):
            return
        task: asyncio.Task[None] = self.application.create_task(self._process(update), update=update)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, update: Update) -> None:
        received_at = self._clock()  # before anything waits: the rep's time ends when the update arrives
        try:
            data = update.to_dict()
            query_id = callback_query_id(data)
            if query_id is not None:
                # Only stops the button's spinner: it must neither hold up nor lose the answer.
                task = asyncio.get_running_loop().create_task(self._answer_callback(query_id))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            inbound = translate_update(data, received_at=received_at)
            if inbound is None:
                log.debug("ignored Telegram update %s", update.update_id)
                return
            if inbound.start_code is not None:
                await self._redeem(inbound)
                return
            await self._dispatch(inbound)
        except Exception:
            log.exception("failed to handle Telegram update %s", update.update_id)

    async def _answer_callback(self, query_id: str) -> None:
        try:
            await self.application.bot.answer_callback_query(query_id)
        except BadRequest as exc:
            # A replayed or late callback query: Telegram no longer accepts an answer. Not an error.
            log.debug("callback query not answered: %s", exc.message)
        except TelegramError as exc:
            log.warning("could not answer a Telegram callback query: %s", exc.message)

    async def _dispatch(self, inbound: Inbound) -> None:
        event = inbound.event
        document = inbound.document
        if (
            document is not None
            and isinstance(event, FileEvent)
            and document.file_size is not None
            and document.file_size > MAX_FILE_BYTES
        ):
            await self._refuse_large(event, document.file_size)
            return
        try:
            decision = await self._runner.run(self._claim, inbound)
        except IntegrityError:
            decision = _Decision(known=True, fresh=False)  # a concurrent copy claimed it first
        if decision.known and not decision.fresh:
            log.info("ignored a replayed Telegram update %s", inbound.update_id)
            return
        if inbound.reply_to_ref is not None and isinstance(event, TextEvent):
            if decision.reply_to_delivery is not None:
                event = replace(event, reply_to_delivery=decision.reply_to_delivery)
            else:
                event = replace(event, reply_to_other_message=True)
        if decision.known and document is not None and isinstance(event, FileEvent):
            content = await self._download(event, document)
            if content is None:
                return
            event = replace(event, content=content)
        await self._hand_over(event)

    async def _refuse_large(self, event: FileEvent, size: int) -> None:
        """Too large to download: say so, write nothing (people coachbot does not know get the engine's
        answer instead)."""
        sender = event.sender
        if not await self._known(sender.user_id):
            await self._hand_over(event)  # the engine answers "ask your admin"; nothing is written
            return
        log.info("refused a %d-byte Telegram file from user %s before downloading it", size, sender.user_id)
        await self.send_message(sender, file_too_large(event.filename))

    async def _download(self, event: FileEvent, document: Document) -> bytes | None:
        """``getFile``, then the download; ``None`` (and the sender told) when Telegram does not give it."""
        try:
            file = await self.application.bot.get_file(document.file_id)
            if file.file_size is not None and file.file_size > MAX_FILE_BYTES:
                await self.send_message(event.sender, file_too_large(event.filename))
                return None
            content = await file.download_as_bytearray()
        except (TelegramError, RuntimeError) as exc:
            log.warning("could not download Telegram file %s: %s", event.filename, exc)
            await self.send_message(event.sender, download_failed(event.filename))
            return None
        return bytes(content)

    def _claim(self, inbound: Inbound) -> _Decision:
        sender = inbound.event.sender
        with write_session(self._engine) as session:
            person = learning.person_for_identity(
                session, platform=PLATFORM, workspace=WORKSPACE, user_id=sender.user_id
            )
            if person is None:
                return _Decision(known=False, fresh=True)  # the engine answers; nothing is written
            if not learning.claim_update(session, platform=PLATFORM, update_key=inbound.update_key):
                return _Decision(known=True, fresh=False)
            onboarding.mark_reachable(session, person_id=person.id)  # someone who writes can be written to
            delivery = None
            if inbound.reply_to_ref is not None:
                delivery = onboarding.delivery_for_message_ref(session, ref=inbound.reply_to_ref)
            return _Decision(known=True, fresh=True, reply_to_delivery=delivery)

    async def _known(self, user_id: str) -> bool:
        """Whether this Telegram user is bound to a roster person."""
        person = await self._runner.read(
            self._engine,
            lambda s: learning.person_for_identity(
                s, platform=PLATFORM, workspace=WORKSPACE, user_id=user_id
            ),
        )
        return person is not None

    async def _hand_over(self, event: InboundEvent) -> None:
        if self._handler is None:
            log.error("Telegram update dropped: no engine attached")
            return
        await self._handler(event)

    async def _redeem(self, inbound: Inbound) -> None:
        code = inbound.start_code
        assert code is not None
        sender = inbound.event.sender
        now = self._clock()

        def redeem() -> tuple[str, learning.PersonView | None]:
            with write_session(self._engine) as session:
                if not learning.claim_update(session, platform=PLATFORM, update_key=inbound.update_key):
                    return "replay", None
                person = onboarding.redeem_invite(
                    session,
                    code=code,
                    platform=PLATFORM,
                    workspace=WORKSPACE,
                    user_id=sender.user_id,
                    now=now,
                )
                if person is None:
                    raise _Refused
                return "bound", person

        try:
            outcome, person = await self._runner.run(redeem)
        except IntegrityError:
            outcome, person = "replay", None
        except _Refused:
            if await self._known(sender.user_id):
                await self._dispatch(inbound)  # already connected: an old link is just "start"
                return
            audit.info("refused an invite code from Telegram user %s", sender.user_id)
            await self.send_message(sender, INVITE_REFUSED)
            return
        if outcome == "replay" or person is None:
            log.info("ignored a replayed /start (update %s)", inbound.update_id)
            return
        audit.info("bound Telegram user %s to person %s by invite", sender.user_id, person.id)
        await self.send_message(sender, welcome(person.name))

    # --- outbound (ChatAdapter) -----------------------------------------------------------------

    @staticmethod
    def _chat_id(to: Address) -> int:
        return int(to.channel or to.user_id)

    async def send_message(
        self, to: Address, message: Message, choices: Sequence[Choice] = (), *, reply_for: int | None = None
    ) -> str | None:
        """Send HTML; MCQ choices as an inline keyboard, a role-play with ForceReply.

        Returns ``"<chat id>:<message id>"``, or ``None`` when the rep blocked the bot (then marked
        unreachable; not retried).
        """
        markup: Any = keyboard(choices)
        if markup is None and reply_for is not None:
            markup = ForceReply(input_field_placeholder=ANSWER_PLACEHOLDER)
        try:
            sent = await self.application.bot.send_message(
                chat_id=self._chat_id(to),
                text=render_html(message),
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
        except Forbidden as exc:
            await self._blocked(to, exc)
            return None
        return message_ref(sent.chat.id, sent.message_id)

    async def send_image(self, to: Address, image: bytes, caption: Message) -> str | None:
        try:
            sent = await self.application.bot.send_photo(
                chat_id=self._chat_id(to),
                photo=image,
                caption=render_html(caption, limit=CAPTION_LIMIT),
                parse_mode=ParseMode.HTML,
            )
        except Forbidden as exc:
            await self._blocked(to, exc)
            return None
        return message_ref(sent.chat.id, sent.message_id)

    async def update_message(self, to: Address, ref: str, message: Message) -> None:
        """Edit a sent message (and drop its keyboard, so a question cannot be answered twice)."""
        parsed = parse_message_ref(ref)
        if parsed is None:
            log.warning("not a Telegram message reference: %r", ref)
            return
        chat_id, message_id = parsed
        try:
            await self.application.bot.edit_message_text(
                text=render_html(message), chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML
            )
        except Forbidden as exc:
            await self._blocked(to, exc)
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("could not edit Telegram message %s: %s", ref, exc.message)
        except TelegramError as exc:  # the edit only tidies the chat: the conversation goes on without it
            log.warning("could not edit Telegram message %s: %s", ref, exc.message)

    async def _blocked(self, to: Address, exc: Forbidden) -> None:
        log.info("Telegram user %s cannot be reached (%s): marked unreachable", to.user_id, exc.message)

        def mark(session: Session) -> None:
            person = learning.person_for_identity(
                session, platform=PLATFORM, workspace=WORKSPACE, user_id=to.user_id
            )
            if person is not None:
                onboarding.mark_unreachable(session, person_id=person.id)

        with contextlib.suppress(Exception):
            await self._runner.write(self._engine, mark)


class _Refused(Exception):
    """An invite code that does not work: roll the transaction back."""
