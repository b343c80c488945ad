"""The Slack adapter: slack-bolt (async) over one Web API client, in HTTP mode or Socket Mode.

Every request is acknowledged first; engine work runs afterwards in a task this adapter tracks (``drain``
waits for them, ``stop`` too). Inbound events are claimed once per Slack event id / action and trigger
(``processed_update``, platform ``slack``), so Slack's retries (``X-Slack-Retry-Num``) and repeated clicks
change nothing, while a retry of a request we never saw is processed normally.

A file a person shares in their DM (``message`` subtype ``file_share``) becomes a :class:`FileEvent`: one
larger than ``MAX_FILE_BYTES`` (by the ``size`` Slack reports) is refused before downloading; otherwise, once
claimed, its ``url_private_download`` is fetched with the bot token as a Bearer header (the app needs the
``files:read`` scope), but only from Slack's file host or the configured API host — see :meth:`may_download`.

A payload the bot has no use for (another shortcut, modal, slash command or options request, any other event
or action) is acknowledged and otherwise ignored: no reply, nothing stored. Slack would retry an
unacknowledged one and show the person an error.

:meth:`SlackAdapter.start` fails fast with :class:`SlackStartError` when Slack refuses a token (the bot token
at ``auth.test``, the app-level token at ``apps.connections.open``) or the Socket Mode connection is not up
within ``connect_timeout``: slack-sdk's Socket Mode client would otherwise retry for ever.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bot.adapters.slack import translate
from bot.events import MAX_FILE_BYTES, FileEvent, InboundEvent
from bot.protocol import AdapterStartError
from scheduler.messages import Choice, Message, message
from scheduler.sender import Address
from storage import directory
from storage.db import read_session, write_session
from storage.models import utcnow
from storage.runner import StorageRunner

log = logging.getLogger(__name__)

PLATFORM = translate.PLATFORM
DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_PACE_SECONDS = 1.0
"""Slack allows about one message per second per channel (https://api.slack.com/apis/rate-limits)."""
DEFAULT_RATE_LIMIT_RETRIES = 3
CLAIM_PREFIX = "recv:"
"""The adapter's claim keys are prefixed: the engine claims a command's own key itself."""
FILE_HOST = ("https", "files.slack.com")
"""Where ``url_private_download`` points in production (https://api.slack.com/types/file)."""
DEFAULT_DOWNLOAD_TIMEOUT = 30.0
DOWNLOAD_CHUNK = 64 * 1024
DEFAULT_CONNECT_TIMEOUT = 30.0
"""How long :meth:`SlackAdapter.start` waits for the first Socket Mode connection once Slack has handed out
its URL (slack-sdk retries a failed connection every 10 s for as long as the client is open)."""
ANY = re.compile(r".*")
"""Matches every callback id, action id, command or event type: the catch-all listeners."""
TOKEN_HINTS = {
    ("SLACK_BOT_TOKEN", "not_allowed_token_type"): "use the Bot User OAuth Token (xoxb-...)",
    ("SLACK_APP_TOKEN", "not_allowed_token_type"): (
        "use an app-level token (xapp-...) with the connections:write scope, not a bot or user token"
    ),
    ("SLACK_APP_TOKEN", "missing_scope"): "the app-level token needs the connections:write scope",
}
"""What to do about an error code Slack gives for a token, where there is more to say than its name."""


class FileTooLarge(Exception):
    """The file is larger than ``MAX_FILE_BYTES``."""


class DownloadFailed(Exception):
    """The file could not be fetched from Slack."""


class SlackStartError(AdapterStartError):
    """The adapter could not start. The message names the setting to fix (``SLACK_APP_TOKEN: ...``), if any,
    and Slack's error code; never a token."""

    def __init__(self, message: str, *, error: str, setting: str | None = None) -> None:
        super().__init__(f"{setting}: {message}" if setting else message)
        self.error = error
        """Slack's error code (``invalid_auth``, ``not_allowed_token_type``, ...), or ``timeout``."""
        self.setting = setting


def _refused(setting: str, method: str, exc: SlackApiError) -> SlackStartError:
    error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
    hint = TOKEN_HINTS.get((setting, error))
    message = f"Slack refused it at {method} ({error})" + (f"; {hint}" if hint else "")
    return SlackStartError(message, error=error, setting=setting)


Handler = Callable[[InboundEvent], Awaitable[None]]


@dataclass(frozen=True)
class Bound:
    """A roster person bound to a Slack id found by their email."""

    email: str
    workspace: str
    user_id: str


class SlackAdapter:
    """Implements :class:`bot.protocol.ChatAdapter` for Slack.

    HTTP mode: route ``POST /slack/events`` to ``await adapter.request_handler.handle(request)``.
    Socket Mode: pass ``app_token``; :meth:`start` connects within ``connect_timeout`` seconds.
    """

    platform = PLATFORM

    def __init__(
        self,
        *,
        token: str,
        engine: Engine,
        runner: StorageRunner,
        signing_secret: str | None = None,
        app_token: str | None = None,
        api_url: str = DEFAULT_API_URL,
        pace_seconds: float = DEFAULT_PACE_SECONDS,
        rate_limit_retries: int = DEFAULT_RATE_LIMIT_RETRIES,
        clock: Callable[[], datetime] = utcnow,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if app_token is None and not signing_secret:
            raise ValueError("HTTP mode needs the signing secret (or give an app token for Socket Mode)")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        self._engine = engine
        self._runner = runner
        self._app_token = app_token
        self._pace = pace_seconds
        self._clock = clock
        self._token = token
        self._download_timeout = download_timeout
        self._connect_timeout = connect_timeout
        base_url = api_url if api_url.endswith("/") else api_url + "/"
        api = urlsplit(base_url)
        self._download_origins = frozenset({FILE_HOST, (api.scheme, api.netloc)})
        self._handler: Handler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_send: dict[str, float] = {}
        self._socket: AsyncSocketModeHandler | None = None
        self.bot_user_id: str | None = None
        self.team_id: str | None = None
        self.started = False
        self.client = AsyncWebClient(
            token=token,
            base_url=base_url,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            ],
        )
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            request_verification_enabled=bool(signing_secret),
            # Our listeners only ack and start a task (the Answer button opens its modal first), so Bolt
            # may run them before answering: the response is as quick, and the task is started when it
            # returns (Bolt would otherwise run event listeners after answering, out of our sight).
            process_before_response=True,
            name="coachbot",
        )
        self.request_handler = AsyncSlackRequestHandler(self.app)
        """For the HTTP app: ``return await adapter.request_handler.handle(request)``."""
        self._register()

    # --- lifecycle ------------------------------------------------------------------------------

    def set_handler(self, handler: Handler) -> None:
        """Where inbound events go: ``adapter.set_handler(coach.handle)`` (the engine needs the adapter
        first, so this is set after construction)."""
        self._handler = handler

    @property
    def socket_mode(self) -> bool:
        return self._app_token is not None

    async def start(self) -> None:
        """Check the bot token with ``auth.test`` (as Bolt does), then connect Socket Mode if configured.

        Raises :class:`SlackStartError` if Slack refuses a token or Socket Mode does not connect in time;
        nothing is left running then (nor when this is cancelled).
        """
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            raise _refused("SLACK_BOT_TOKEN", "auth.test", exc) from exc
        self.bot_user_id = auth.get("user_id")
        self.team_id = auth.get("team_id")
        if self._app_token is not None:
            await self._connect(self._app_token)
        self.started = True
        log.info("slack adapter started (%s mode)", "socket" if self.socket_mode else "http")

    async def _connect(self, app_token: str) -> None:
        """Check the app-level token by asking for a WebSocket URL (``apps.connections.open``) once, then
        connect the Socket Mode client to that URL.

        slack-sdk's client would ask for the URL itself, but it logs and retries every failure for as long
        as it is open, a refused token included; so the token is checked here, and the connection is bounded
        by ``connect_timeout``. If connecting fails or is cancelled, the client is closed (its WebSocket, its
        aiohttp session and its tasks) before the error is raised.
        """
        try:
            opened = await self.client.apps_connections_open(app_token=app_token)
        except SlackApiError as exc:
            raise _refused("SLACK_APP_TOKEN", "apps.connections.open", exc) from exc
        url = opened.get("url")
        if not isinstance(url, str) or not url:
            raise SlackStartError("apps.connections.open returned no WebSocket URL", error="no_url")
        socket = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        socket.client.wss_uri = url  # the client asks for a URL only when it has none: this one is fresh
        self._socket = socket
        try:
            async with asyncio.timeout(self._connect_timeout):
                await socket.connect_async()  # type: ignore[no-untyped-call]
        except TimeoutError as exc:
            await self._discard(socket)
            raise SlackStartError(
                f"Socket Mode did not connect to {urlsplit(url).hostname} within {self._connect_timeout:g} s",
                error="timeout",
            ) from exc
        except BaseException:
            await self._discard(socket)
            raise

    async def _discard(self, socket: AsyncSocketModeHandler) -> None:
        self._socket = None
        await socket.close_async()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        """Close Socket Mode, finish the engine work in flight, and close the HTTP session if we own one."""
        self.started = False
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        await self.drain()

    async def drain(self) -> None:
        """Wait until the engine work started by past requests has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack event processing failed", exc_info=task.exception())

    # --- inbound --------------------------------------------------------------------------------

    def _register(self) -> None:
        """Bolt runs the first listener that matches: the specific ones, then catch-alls that acknowledge
        everything else (Bolt would answer it "unhandled", 404, and in Socket Mode not acknowledge it at all,
        so Slack would retry it and show the person an error)."""
        app = self.app
        app.event("message")(self._on_message)
        app.action(translate.CHOICE_ACTION)(self._on_choice)
        app.action(translate.ANSWER_ACTION)(self._on_answer_button)
        app.view(translate.ANSWER_VIEW)(self._on_answer_view)  # view_submission only
        app.command("/coach")(self._on_command)

        app.event(ANY)(self._on_ignored)
        app.action(ANY)(self._on_ignored)  # block_actions, and legacy attachment and dialog actions
        app.shortcut(ANY)(self._on_ignored)  # global and message shortcuts
        app.view(ANY)(self._on_ignored)  # other view_submissions
        app.view_closed(ANY)(self._on_ignored)
        app.options(ANY)(self._on_ignored_options)  # block_suggestion and dialog_suggestion
        app.command(ANY)(self._on_ignored)

    async def _on_ignored(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_ignored_options(self, ack: AsyncAck) -> None:
        await ack(options=[])  # an options request is answered with the options: none

    async def _on_message(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        received_at = self._clock()
        event = translate.event_to_inbound(body, bot_user_id=self.bot_user_id, received_at=received_at)
        if event is not None:
            self._spawn(self._process(event))
            return
        for share in translate.file_shares(body, bot_user_id=self.bot_user_id, received_at=received_at):
            self._spawn(self._process_file(share))

    async def _on_choice(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        event = translate.action_to_inbound(body, received_at=self._clock())
        if event is None:
            log.warning("dropped a block_actions payload without the fields of an answer")
            return
        self._spawn(self._process(event))

    async def _on_answer_button(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        request = translate.answer_request(body)
        if request is not None:
            # trigger_id is valid for 3 seconds: open the modal before anything else.
            try:
                await self.client.views_open(
                    trigger_id=request.trigger_id, view=translate.answer_modal(request)
                )
            except SlackApiError as exc:
                log.warning("could not open the answer modal: %s", exc.response.get("error"))
        else:
            log.warning("dropped an Answer click without trigger, channel or message")
        await ack()

    async def _on_answer_view(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        answer = translate.view_to_answer(body)
        if answer is None:
            log.warning("dropped a view_submission without an answer")
            return
        self._spawn(self._process_answer(answer, self._clock()))

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        event = translate.command_to_inbound(body, received_at=self._clock())
        if event is None:
            log.warning("dropped a slash command without team, user or trigger")
            return
        self._spawn(self._process(event))

    async def _process_answer(self, answer: translate.ModalAnswer, received_at: datetime) -> None:
        delivery_id, ref = translate.metadata_delivery(answer.metadata)
        if delivery_id is None and ref is not None:
            delivery_id = await self._read(lambda s: directory.delivery_for_message(s, message_ref=ref))
        await self._process(translate.answer_event(answer, delivery_id=delivery_id, received_at=received_at))

    async def _process(self, event: InboundEvent) -> None:
        """Claim the event once (for a known person), then hand it to the engine."""
        if await self._claim(event.sender, event.key) is directory.Claim.REPLAY:
            log.info("ignored a replayed slack %s %s", type(event).__name__, event.key)
            return
        await self._deliver(event)

    async def _process_file(self, share: translate.FileShare) -> None:
        """Refuse an oversized file unread; otherwise claim it, download it and hand it to the engine.

        A stranger's file is not downloaded: the engine only tells them to ask their admin, so their
        event carries no content.
        """
        too_large = message(
            f"Sorry, {share.filename} is larger than {MAX_FILE_BYTES // 1_048_576} MB, so I did not open it. "
            "Nothing was loaded."
        )
        if share.size is not None and share.size > MAX_FILE_BYTES:
            log.info("refused a slack file of %d bytes unread", share.size)
            await self._tell(share.sender, too_large)
            return
        claim = await self._claim(share.sender, share.key)
        if claim is directory.Claim.REPLAY:
            log.info("ignored a replayed slack file %s", share.key)
            return
        content = b""
        if claim is directory.Claim.FRESH:
            try:
                content = await self.download(share.url)
            except FileTooLarge:
                await self._tell(share.sender, too_large)
                return
            except DownloadFailed as exc:
                log.warning("could not download slack file %s: %s", share.file_id, exc)
                await self._tell(
                    share.sender,
                    message(f"Sorry, I could not fetch {share.filename} from Slack. Please send it again."),
                )
                return
        await self._deliver(
            FileEvent(
                sender=share.sender,
                key=share.key,
                received_at=share.received_at,
                filename=share.filename,
                content=content,
                caption=share.caption,
            )
        )

    async def _tell(self, to: Address, text: Message) -> None:
        try:
            await self.send_message(to, text)
        except SlackApiError as exc:
            log.warning("could not reply on slack: %s", exc.response.get("error"))

    async def _deliver(self, event: InboundEvent) -> None:
        if self._handler is None:
            log.error("no engine attached to the slack adapter; dropped %s", event.key)
            return
        await self._handler(event)

    async def _claim(self, sender: Address, key: str) -> directory.Claim:
        """Record the event's key for a known person: FRESH, REPLAY, or UNKNOWN (nothing written)."""

        def claim() -> directory.Claim:
            try:
                with write_session(self._engine) as session:
                    return directory.claim_inbound(
                        session,
                        platform=PLATFORM,
                        workspace=sender.workspace,
                        user_id=sender.user_id,
                        update_key=CLAIM_PREFIX + key,
                    )
            except IntegrityError:
                return directory.Claim.REPLAY

        result: directory.Claim = await self._runner.run(claim)
        return result

    # --- files ----------------------------------------------------------------------------------

    def may_download(self, url: str) -> bool:
        """Whether the bot token may be sent to ``url``: only to Slack's file host (``https`` on
        ``files.slack.com``) or the host of the configured API URL (the fake Slack server in tests).
        Any other URL is never fetched, so a crafted payload cannot make us hand the token elsewhere."""
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) in self._download_origins

    async def download(self, url: str) -> bytes:
        """A private file's bytes, fetched with ``Authorization: Bearer <bot token>``.

        Redirects are not followed (Slack answers a request it does not accept with its sign-in page);
        an HTML answer is that page, not the file. More than ``MAX_FILE_BYTES`` is :class:`FileTooLarge`,
        whatever ``size`` said; anything else that goes wrong is :class:`DownloadFailed`.
        """
        if not self.may_download(url):
            raise DownloadFailed(f"not a Slack file URL: {urlsplit(url).netloc or url!r}")
        timeout = aiohttp.ClientTimeout(total=self._download_timeout)
        client = self.client
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=client.trust_env_in_session) as session,
                session.get(
                    url,
                    headers={"Authorization": f"Bearer {self._token}"},
                    allow_redirects=False,
                    ssl=client.ssl if client.ssl is not None else True,
                    proxy=client.proxy,
                ) as response,
            ):
                if response.status != 200:
                    raise DownloadFailed(f"HTTP {response.status}")
                if response.content_type == "text/html":
                    raise DownloadFailed("an HTML page, not the file (is files:read granted?)")
                if response.content_length is not None and response.content_length > MAX_FILE_BYTES:
                    raise FileTooLarge
                content = bytearray()
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                    content.extend(chunk)
                    if len(content) > MAX_FILE_BYTES:
                        raise FileTooLarge
                return bytes(content)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadFailed(f"{type(exc).__name__}: {exc}") from exc

    # --- storage --------------------------------------------------------------------------------

    async def _read(self, fn: Callable[[Any], Any]) -> Any:
        return await self._runner.read(self._engine, fn)

    async def _write(self, fn: Callable[[Any], Any]) -> Any:
        return await self._runner.write(self._engine, fn)

    # --- outbound -------------------------------------------------------------------------------

    async def _channel(self, to: Address) -> str:
        """The DM channel with this person: given, stored, or opened with ``conversations.open`` (and then
        stored on their chat identity, since ``chat.update`` needs the channel, not the user id)."""
        if to.channel:
            return to.channel
        stored: str | None = await self._read(
            lambda s: directory.dm_channel(s, platform=PLATFORM, workspace=to.workspace, user_id=to.user_id)
        )
        if stored:
            return stored
        opened = await self.client.conversations_open(users=to.user_id)
        channel = str(opened["channel"]["id"])
        await self._write(
            lambda s: directory.set_dm_channel(
                s, platform=PLATFORM, workspace=to.workspace, user_id=to.user_id, channel=channel
            )
        )
        return channel

    @asynccontextmanager
    async def _paced(self, channel: str) -> AsyncIterator[None]:
        """One message at a time per channel, at most one per ``pace_seconds``."""
        lock = self._locks.setdefault(channel, asyncio.Lock())
        loop = asyncio.get_running_loop()
        async with lock:
            wait = self._last_send.get(channel, -math.inf) + self._pace - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._last_send[channel] = loop.time()

    async def send_message(
        self, to: Address, message: Message, choices: Sequence[Choice] = (), *, reply_for: int | None = None
    ) -> str | None:
        channel = await self._channel(to)
        async with self._paced(channel):
            response = await self.client.chat_postMessage(
                channel=channel,
                text=translate.fallback_text(message),
                blocks=translate.message_blocks(message, choices, reply_for=reply_for),
                unfurl_links=False,
            )
        return translate.message_ref(str(response["channel"]), str(response["ts"]))

    async def send_image(self, to: Address, image: bytes, caption: Message) -> str | None:
        """Upload a chart (``files_upload_v2``: getUploadURLExternal, upload, completeUploadExternal)."""
        channel = await self._channel(to)
        async with self._paced(channel):
            response = await self.client.files_upload_v2(
                channel=channel,
                file=image,
                filename="chart.png",
                title="chart.png",
                initial_comment=translate.mrkdwn(caption),
            )
        files = response.get("files") or []
        file_id = files[0].get("id") if files and isinstance(files[0], dict) else None
        return str(file_id) if file_id else None

    async def update_message(self, to: Address, ref: str, message: Message) -> None:
        """Replace a question with its answered form, without buttons, so it cannot be answered twice."""
        channel, ts = translate.split_ref(ref)
        if channel is None:
            channel = await self._channel(to)
        async with self._paced(channel):
            await self.client.chat_update(
                channel=channel,
                ts=ts,
                text=translate.fallback_text(message),
                blocks=translate.text_blocks(message),
            )

    # --- onboarding -----------------------------------------------------------------------------

    async def bind_by_email(self) -> list[Bound]:
        """Find active roster people without a Slack id by email (``users.lookupByEmail``) and bind them."""
        return await bind_by_email(
            self.client, engine=self._engine, runner=self._runner, team_id=self.team_id
        )


async def bind_by_email(
    client: AsyncWebClient, *, engine: Engine, runner: StorageRunner, team_id: str | None = None
) -> list[Bound]:
    """Bind each active roster person without a Slack identity to the Slack user with their email.

    People Slack does not know (``users_not_found``) are skipped; they can be bound on a later run.
    """

    def unbound() -> list[directory.Unbound]:
        with read_session(engine) as session:
            return directory.people_without_identity(session, platform=PLATFORM)

    bound: list[Bound] = []
    for person in await runner.run(unbound):
        try:
            response = await client.users_lookupByEmail(email=person.email)
        except SlackApiError as exc:
            log.info("no slack user for a roster person (%s)", exc.response.get("error"))
            continue
        user = response.get("user") or {}
        user_id = user.get("id")
        workspace = user.get("team_id") or team_id
        if not isinstance(user_id, str) or not isinstance(workspace, str) or user.get("is_bot"):
            continue

        def bind(email: str = person.email, uid: str = user_id, ws: str = workspace) -> bool:
            try:
                with write_session(engine) as session:
                    return directory.bind_identity_by_email(
                        session, email=email, platform=PLATFORM, workspace=ws, user_id=uid
                    )
            except IntegrityError:
                return False

        if await runner.run(bind):
            bound.append(Bound(person.email, workspace, user_id))
    return bound
