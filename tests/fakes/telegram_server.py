"""A fake Telegram Bot API server for tests: a real HTTP server on 127.0.0.1, no network beyond it.

It speaks the Bot API as documented at https://core.telegram.org/bots/api ("Making requests": requests go
to ``/bot<token>/<METHOD_NAME>``, with parameters in the query string, ``application/json``,
``application/x-www-form-urlencoded`` or ``multipart/form-data``; every answer is a JSON object with
``ok`` and either ``result`` or ``description`` and ``error_code``, plus ``parameters.retry_after`` for
flood control). Each call's token is checked (a wrong one gets 401 Unauthorized, an unknown method 404)
and recorded with its method, decoded parameters and encoding.

Implemented methods: getMe, setMyCommands, sendMessage (incrementing ``message_id`` per chat), sendPhoto,
editMessageText, answerCallbackQuery, getUpdates (from a queue tests push to, honouring ``offset`` and
returning early when empty), setWebhook, deleteWebhook, getWebhookInfo and getFile (for files tests
register with :meth:`FakeTelegramServer.add_file`, served as documented at
https://core.telegram.org/bots/api#getfile from ``/file/bot<token>/<file_path>``; each download is
recorded in ``downloads``). ``parse_mode=HTML`` texts are
checked like Telegram does: only the documented tags, and a bare ``<``, ``>`` or ``&`` is refused with
"can't parse entities".

Failures are scripted: :meth:`FakeTelegramServer.script` queues a :class:`Failure` for the next call(s)
of one method (:func:`retry_after`, :func:`blocked`, :func:`query_too_old`), and :meth:`block` makes every
send to a chat answer 403 "Forbidden: bot was blocked by the user".
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.local import serve_locally

DEFAULT_TOKEN = "123456:TEST-fake-telegram-token"
BOT_USER = {
    "id": 999000,
    "is_bot": True,
    "first_name": "Coach",
    "username": "coach_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
_ALLOWED_TAG = re.compile(
    r"</?(?:b|strong|i|em|u|ins|s|strike|del|code|pre|tg-spoiler|blockquote)>|<a href=\"[^\"<>]*\">|</a>"
)
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Call:
    """One request: the Bot API method, its decoded parameters and how they were encoded."""

    method: str
    params: dict[str, Any]
    encoding: str

    def json_param(self, name: str) -> Any:
        """A parameter PTB sends as serialized JSON (``reply_markup``, ``allowed_updates``, ``commands``)."""
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class StoredFile:
    """A file the fake serves: what getFile answers for ``file_id`` and the bytes at ``file_path``."""

    file_id: str
    content: bytes
    file_path: str

    @property
    def file_unique_id(self) -> str:
        return f"u-{self.file_id}"


@dataclass(frozen=True)
class Failure:
    status: int
    description: str
    retry_after: int | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def retry_after(seconds: int) -> Failure:
    return Failure(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)


def blocked() -> Failure:
    return Failure(403, "Forbidden: bot was blocked by the user")


def query_too_old() -> Failure:
    return Failure(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse ``text`` with ``parse_mode=HTML`` (None if it parses)."""
    rest = _ENTITY.sub("", _ALLOWED_TAG.sub("", text))
    for char in "<>&":
        if char in rest:
            return f"Bad Request: can't parse entities: unexpected {char!r}"
    return None


def html_to_plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


class FakeTelegramServer:
    """``async with FakeTelegramServer() as server:`` then point PTB at ``server.base_url``."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, max_poll_wait: float = 0.2) -> None:
        self.token = token
        self.max_poll_wait = max_poll_wait
        self.calls: list[Call] = []
        self.rejected: list[tuple[str, int]] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.messages: dict[tuple[int, int], str] = {}
        self._message_ids: defaultdict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._scripts: defaultdict[str, deque[Failure]] = defaultdict(deque)
        self._blocked: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._files: dict[str, StoredFile] = {}
        self.downloads: list[str] = []
        """The ``file_path`` of every download request with the right token, in order."""
        self._update_arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegramServer:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner, self.port = await serve_locally(app, shutdown_timeout=1.0)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """What ``TELEGRAM_API_BASE_URL`` would be: the token is appended to it."""
        return f"http://127.0.0.1:{self.port}/bot"

    # --- scripting and inspection ---------------------------------------------------------------

    def script(self, method: str, failure: Failure, times: int = 1) -> None:
        for _ in range(times):
            self._scripts[method].append(failure)

    def block(self, chat_id: int) -> None:
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def add_file(self, file_id: str, content: bytes, file_path: str | None = None) -> StoredFile:
        """Serve ``content`` as ``file_id`` (getFile) and at ``file_path`` (the download)."""
        stored = StoredFile(file_id, content, file_path or f"documents/file_{len(self._files)}")
        self._files[file_id] = stored
        return stored

    def push_update(self, update: dict[str, Any]) -> None:
        self._updates.append(update)
        self._update_arrived.set()

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [
            str(call.params.get("text"))
            for call in self.calls_to("sendMessage")
            if chat_id is None or int(call.params["chat_id"]) == chat_id
        ]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met; calls: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.01)

    # --- HTTP -----------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], str]:
        params: dict[str, Any] = dict(request.query)
        content_type = request.content_type
        if not request.can_read_body:
            return params, "query" if params else "none"
        if content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(text="JSON body must be an object")
            params.update(body)
            return params, "json"
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                params[key] = (
                    value if isinstance(value, str) else f"<file {getattr(value, 'filename', 'bytes')}>"
                )
            return params, "form" if content_type.endswith("urlencoded") else "multipart"
        raise web.HTTPBadRequest(text=f"unsupported content type {content_type}")

    async def _download(self, request: web.Request, token: str, file_path: str) -> web.Response:
        if token != self.token:
            self.rejected.append((f"file/{file_path}", 401))
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        self.downloads.append(file_path)
        stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if request.method != "GET" or stored is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.content, content_type="application/octet-stream")

    async def _handle(self, request: web.Request) -> web.Response:
        download = re.fullmatch(r"/file/bot([^/]+)/(.+)", request.path)
        if download is not None:
            return await self._download(request, *download.groups())
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path)
        if match is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        token, method = match.groups()
        if token != self.token:
            self.rejected.append((method, 401))
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params, encoding = await self._params(request)
        self.calls.append(Call(method, params, encoding))
        scripted = self._scripts.get(method)
        if scripted:
            failure = scripted.popleft()
            return web.json_response(failure.body(), status=failure.status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            result = await handler(params)
        except _ApiError as exc:
            return web.json_response(exc.failure.body(), status=exc.failure.status)
        return web.json_response({"ok": True, "result": result})

    # --- methods --------------------------------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> int:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):
            raise _ApiError(Failure(400, "Bad Request: chat_id is empty")) from None
        if chat_id in self._blocked:
            raise _ApiError(blocked())
        return chat_id

    def _message(self, chat_id: int, message_id: int, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Rep"},
            "from": BOT_USER,
            **extra,
        }

    def _text(self, params: dict[str, Any], key: str = "text") -> str:
        text = str(params.get(key, ""))
        if params.get("parse_mode") == "HTML":
            problem = html_problem(text)
            if problem is not None:
                raise _ApiError(Failure(400, problem))
            return html_to_plain(text)
        return text

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook_url = ""
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook_url = str(params.get("url", ""))
        self.webhook_secret = params.get("secret_token")
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        text = self._text(params)
        if not text.strip():
            raise _ApiError(Failure(400, "Bad Request: message text is empty"))
        message_id = next(self._message_ids[chat_id])
        self.messages[(chat_id, message_id)] = text
        extra: dict[str, Any] = {"text": text}
        markup = params.get("reply_markup")
        markup = json.loads(markup) if isinstance(markup, str) else markup
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            extra["reply_markup"] = markup
        return self._message(chat_id, message_id, **extra)

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        caption = self._text(params, "caption")
        message_id = next(self._message_ids[chat_id])
        self.messages[(chat_id, message_id)] = caption
        photo = [
            {"file_id": f"photo-{message_id}", "file_unique_id": f"u{message_id}", "width": 1, "height": 1}
        ]
        return self._message(chat_id, message_id, photo=photo, caption=caption)

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        message_id = int(params.get("message_id", 0))
        if (chat_id, message_id) not in self.messages:
            raise _ApiError(Failure(400, "Bad Request: message to edit not found"))
        text = self._text(params)
        if self.messages[(chat_id, message_id)] == text and "reply_markup" not in params:
            raise _ApiError(Failure(400, "Bad Request: message is not modified"))
        self.messages[(chat_id, message_id)] = text
        return self._message(chat_id, message_id, text=text, edit_date=int(time.time()))

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise _ApiError(Failure(400, "Bad Request: query ID is invalid"))
        return True

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _ApiError(Failure(400, "Bad Request: invalid file_id"))
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
        wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        if not self._updates and wait > 0:
            self._update_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_arrived.wait(), wait)
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]


class _ApiError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.description)
        self.failure = failure
