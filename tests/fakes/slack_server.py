"""A fake Slack Web API for tests: a real aiohttp HTTP server on 127.0.0.1, no network beyond it.

It answers ``POST/GET /api/<method>`` for the methods the Slack adapter calls, in the shapes documented at
https://api.slack.com/methods:

- ``auth.test`` — https://api.slack.com/methods/auth.test
- ``conversations.open`` — https://api.slack.com/methods/conversations.open
- ``chat.postMessage`` — https://api.slack.com/methods/chat.postMessage
- ``chat.update`` — https://api.slack.com/methods/chat.update
- ``views.open`` — https://api.slack.com/methods/views.open
- ``users.lookupByEmail`` — https://api.slack.com/methods/users.lookupByEmail
- ``files.getUploadURLExternal`` — https://api.slack.com/methods/files.getUploadURLExternal (its
  ``upload_url`` points back at this server, ``POST /upload/<file id>``)
- ``files.completeUploadExternal`` — https://api.slack.com/methods/files.completeUploadExternal

Files people share are registered with :meth:`FakeSlackServer.add_file`, which returns a file object
(https://api.slack.com/types/file) whose ``url_private_download`` points back at this server,
``GET /files-pri/<team>-<file id>/download/<name>`` as on files.slack.com. That route serves the registered
bytes only with the bot token as ``Authorization: Bearer`` (otherwise HTTP 403, nothing served) and records
each request as a :class:`Call` of method ``files.download``.

Each call must carry ``Authorization: Bearer <token>`` (otherwise ``not_authed``/``invalid_auth``, as Slack
answers with HTTP 200 and ``ok: false``). Arguments may come as a query string, a form body
(``application/x-www-form-urlencoded``) or, for the methods that accept it, a JSON body
(``application/json``; https://api.slack.com/web#posting_json) — a JSON body to any other method is
refused with ``invalid_arguments``. Every call is recorded; :meth:`FakeSlackServer.rate_limit_once` makes
the next call of a method answer HTTP 429 with ``Retry-After``
(https://api.slack.com/apis/rate-limits#headers).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.local import serve_locally

BOT_TOKEN = "xoxb-test-fake-slack"
TEAM_ID = "T0COACH"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
DOWNLOAD = "files.download"
"""The method name recorded for a request to a ``url_private_download``."""
JSON_METHODS = frozenset({"chat.postMessage", "chat.update", "views.open", "conversations.open"})


@dataclass(frozen=True)
class Call:
    """One recorded Web API call."""

    method: str
    http_method: str
    encoding: str
    """``json``, ``form``, ``query`` (arguments only in the URL) or ``none``."""
    args: Mapping[str, Any]
    authorization: str | None
    at: float


@dataclass
class FakeSlackServer:
    token: str = BOT_TOKEN
    team_id: str = TEAM_ID
    users_by_email: dict[str, str] = field(default_factory=dict)
    """Email -> Slack user id, for ``users.lookupByEmail``."""
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    hosted: dict[str, bytes] = field(default_factory=dict)
    """File id -> the bytes ``url_private_download`` serves (see :meth:`add_file`)."""
    _rate_limited: dict[str, int] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    base: str = ""

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def rate_limit_once(self, method: str, retry_after: int = 1) -> None:
        """The next call of ``method`` gets HTTP 429 with ``Retry-After: retry_after`` (seconds)."""
        self._rate_limited[method] = retry_after

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def dm_channel(self, user_id: str) -> str:
        return f"D{user_id}"

    def add_file(
        self, name: str, content: bytes, *, user: str = "", mimetype: str = "text/plain"
    ) -> dict[str, Any]:
        """Host ``content`` and return its file object, as a ``file_share`` message carries it."""
        file_id = f"F{next(self._ts):08d}"
        self.hosted[file_id] = content
        private = f"{self.base}/files-pri/{self.team_id}-{file_id}"
        return {
            "id": file_id,
            "created": 1_700_000_200,
            "timestamp": 1_700_000_200,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "text",
            "pretty_type": "Plain Text",
            "user": user,
            "user_team": self.team_id,
            "editable": True,
            "size": len(content),
            "mode": "snippet",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{private}/{name}",
            "url_private_download": f"{private}/download/{name}",
            "permalink": f"https://coach-test.slack.com/files/{user}/{file_id}/{name}",
            "is_starred": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }

    async def __aenter__(self) -> FakeSlackServer:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._download)
        self._runner, port = await serve_locally(app)
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- HTTP -----------------------------------------------------------------------------------

    async def _arguments(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        args: dict[str, Any] = dict(request.query)
        raw = await request.text()
        content_type = request.content_type
        if raw and content_type == "application/json":
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(text="a JSON body must be an object")
            args.update(body)
            return "json", args
        if raw and content_type == "application/x-www-form-urlencoded":
            args.update(parse_qsl(raw, keep_blank_values=True))
            return "form", args
        if raw:
            raise web.HTTPBadRequest(text=f"unexpected content type {content_type}")
        return ("query" if args else "none"), args

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        encoding, args = await self._arguments(request)
        authorization = request.headers.get("Authorization")
        self.calls.append(Call(method, request.method, encoding, args, authorization, time.monotonic()))
        retry_after = self._rate_limited.pop(method, None)
        if retry_after is not None:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
            )
        if authorization is None:
            return web.json_response({"ok": False, "error": "not_authed"})
        if authorization != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if encoding == "json" and method not in JSON_METHODS:
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"}, status=404)
        result: dict[str, Any] = handler(args)
        return web.json_response(result)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text="OK - 1")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        team, _, file_id = request.match_info["team_file"].partition("-")
        authorization = request.headers.get("Authorization")
        args = {"file": file_id, "name": request.match_info["name"]}
        self.calls.append(Call(DOWNLOAD, request.method, "none", args, authorization, time.monotonic()))
        if authorization != f"Bearer {self.token}":
            return web.Response(status=403, text="not authorized")
        content = self.hosted.get(file_id)
        if team != self.team_id or content is None:
            return web.Response(status=404, text="file not found")
        return web.Response(body=content, content_type="application/octet-stream")

    # --- methods --------------------------------------------------------------------------------

    def _missing(self, args: Mapping[str, Any], *names: str) -> dict[str, Any] | None:
        for name in names:
            if not args.get(name):
                return {"ok": False, "error": "invalid_arguments", "detail": f"missing {name}"}
        return None

    def _auth_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://coach-test.slack.com/",
            "team": "Coach Test",
            "user": "coachbot",
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversations_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "users")
        if missing:
            return missing
        return {"ok": True, "channel": {"id": self.dm_channel(str(args["users"]))}}

    def _chat_postMessage(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "channel")
        if missing:
            return missing
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        return {
            "ok": True,
            "channel": args["channel"],
            "ts": ts,
            "message": {"type": "message", "bot_id": BOT_ID, "text": args.get("text", ""), "ts": ts},
        }

    def _chat_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "channel", "ts")
        if missing:
            return missing
        if not str(args["channel"]).startswith(("C", "D", "G")):
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args.get("text", "")}

    def _views_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "trigger_id", "view")
        if missing:
            return missing
        view = args["view"]
        if isinstance(view, str):
            view = json.loads(view)
        return {"ok": True, "view": {"id": f"V{next(self._ts)}", **view}}

    def _users_lookupByEmail(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "email")
        if missing:
            return missing
        user_id = self.users_by_email.get(str(args["email"]).lower())
        if user_id is None:
            return {"ok": False, "error": "users_not_found"}
        return {
            "ok": True,
            "user": {
                "id": user_id,
                "team_id": self.team_id,
                "is_bot": False,
                "profile": {"email": args["email"]},
            },
        }

    def _files_getUploadURLExternal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "filename", "length")
        if missing:
            return missing
        file_id = f"F{next(self._ts)}"
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _files_completeUploadExternal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        missing = self._missing(args, "files")
        if missing:
            return missing
        files = json.loads(str(args["files"]))
        for entry in files:
            if entry["id"] not in self.uploads:
                return {"ok": False, "error": "file_not_found"}
        return {
            "ok": True,
            "files": [{"id": entry["id"], "title": entry.get("title", "")} for entry in files],
        }
