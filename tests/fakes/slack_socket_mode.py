"""A fake Slack Socket Mode endpoint for tests: real aiohttp servers on 127.0.0.1, no network beyond it.

:class:`FakeSocketModeServer` is the fake Web API of :mod:`tests.fakes.slack_server` (every method there
works as before, on the same ``api_url``) plus what Socket Mode adds, as documented at
https://api.slack.com/apis/socket-mode and https://api.slack.com/apis/connections/socket-implement:

- ``apps.connections.open`` (https://api.slack.com/methods/apps.connections.open) on the Web API: it takes
  only the app-level token (``xapp-…``, scope ``connections:write``,
  https://api.slack.com/scopes/connections:write) as ``Authorization: Bearer`` and answers
  ``{"ok": true, "url": "wss://wss-primary.slack.com/link/?ticket=…&app_id=…"}`` — here a ``ws://`` URL to a
  second local server, as the real WebSocket host is not slack.com. No token is ``not_authed``; a bot or
  user token (``xoxb-``/``xoxp-``) is ``not_allowed_token_type``; any other token is ``invalid_auth``.
  Every ticket opens one connection: a reconnecting client must call the method again. The app token is
  refused by the other Web API methods (``not_allowed_token_type``), as Slack does.
- The WebSocket (``GET /link/?ticket=…``): once connected, the server sends
  ``{"type": "hello", "num_connections": 1, "debug_info": {...}, "connection_info": {"app_id": ...}}``.
  Payloads then arrive in envelopes (:meth:`FakeSocketModeServer.send`)::

      {"envelope_id": "<uuid>", "type": "events_api" | "interactive" | "slash_commands",
       "payload": {...}, "accepts_response_payload": false}

  with, for ``events_api``, ``retry_attempt`` and ``retry_reason`` (``0`` and ``""`` unless Slack is
  redelivering). The payload is what HTTP mode would POST: an ``event_callback``
  (https://api.slack.com/apis/connections/events-api#callback-field), an interaction payload
  (https://api.slack.com/reference/interaction-payloads) as JSON rather than a form field, or a slash
  command's fields (https://api.slack.com/interactivity/slash-commands#app_command_handling) as an object.
  ``accepts_response_payload`` is true for slash commands and for ``view_submission``/``block_suggestion``
  interactions, whose acknowledgement may carry a response.
- The client acknowledges each envelope with ``{"envelope_id": "<uuid>"}``, optionally with ``"payload"``
  (https://api.slack.com/apis/connections/socket-implement#acknowledge). Each acknowledgement is recorded as
  an :class:`Ack` in :attr:`FakeSocketModeServer.acks`; :meth:`FakeSocketModeServer.deliver` sends a
  payload in a new envelope and waits (bounded) for its acknowledgement, and
  :meth:`FakeSocketModeServer.deliver_envelope` does the same for a given envelope, e.g. one delivered
  again as Slack redelivers an envelope it got no acknowledgement for. Any other frame the client sends is
  kept in :attr:`Connection.unexpected`.
- :meth:`FakeSocketModeServer.disconnect` sends ``{"type": "disconnect", "reason": "refresh_requested",
  "debug_info": {...}}``, Slack's request to open a fresh connection; the client should call
  ``apps.connections.open`` again, connect to the new URL and close the old socket (the fake leaves the old
  socket open until the client closes it, so a test sees who closed it).

Every connection is a :class:`Connection` in :attr:`FakeSocketModeServer.connections`, which records the
frames sent on it and whether and how the client closed it.

To test a client that gets a URL but cannot connect, :attr:`FakeSocketModeServer.ticket_base` points the
URLs ``apps.connections.open`` hands out somewhere else: at a port nobody listens on (:func:`unused_port`), or
at a :class:`SilentServer`, which accepts TCP connections and never answers.

The class extends :class:`~tests.fakes.slack_server.FakeSlackServer` without changing it: it answers
``apps.connections.open`` (and an app token on any other method) itself and hands every other request to
the base class; the WebSocket is served by a second aiohttp server on another ephemeral port.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from tests.fakes.local import serve_locally
from tests.fakes.slack_server import Call, FakeSlackServer

APP_ID = "A0COACH"
APP_TOKEN = "xapp-1-A0COACH-1-fakesocketmodetoken"
OPEN = "apps.connections.open"
ENVELOPE_TYPES = frozenset({"events_api", "interactive", "slash_commands"})
RESPONSE_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})
"""Interaction payload types whose acknowledgement may carry a response (``response_action``, options)."""
WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Ack:
    """One acknowledgement the client sent: ``{"envelope_id": ..., "payload": ...}``."""

    envelope_id: str
    payload: Mapping[str, Any] | None
    connection: int
    """The :attr:`Connection.number` it came on."""
    at: float


@dataclass
class Connection:
    """One WebSocket connection a client opened with a ticket from ``apps.connections.open``."""

    number: int
    ticket: str
    socket: web.WebSocketResponse
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every frame the server sent on it (``hello``, envelopes, ``disconnect``), in order."""
    unexpected: list[str] = field(default_factory=list)
    """Frames from the client that are not an acknowledgement."""
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the socket is closed (by the client or, at the end, by the server)."""
    closed_by_client: bool = False
    """Whether the client closed it (rather than the fake, when it shuts down)."""
    closed_by_server: bool = False
    """Whether the fake closed it on shutdown, the client having left it open."""

    @property
    def open(self) -> bool:
        return not self.closed.is_set()


@dataclass
class FakeSocketModeServer(FakeSlackServer):
    """The fake Web API with ``apps.connections.open`` and the Socket Mode WebSocket it hands out."""

    app_token: str = APP_TOKEN
    app_id: str = APP_ID
    connections: list[Connection] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    _tickets: set[str] = field(default_factory=set)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _socket_runner: web.AppRunner | None = None
    socket_base: str = ""
    ticket_base: str | None = None
    """Where the URLs ``apps.connections.open`` hands out point instead of :attr:`socket_base`, e.g.
    ``ws://127.0.0.1:<unused port>``: a ticket is issued, but connecting fails or hangs."""

    async def __aenter__(self) -> FakeSocketModeServer:
        await super().__aenter__()
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._socket_runner, port = await serve_locally(app, shutdown_timeout=1.0)
        self.socket_base = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for connection in self.connections:
            if connection.open:
                connection.closed_by_server = True
                await connection.socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._socket_runner is not None:
            await self._socket_runner.cleanup()
        await super().__aexit__(exc_type, exc, tb)

    # --- what tests use -------------------------------------------------------------------------

    @property
    def live(self) -> list[Connection]:
        """The connections still open, oldest first."""
        return [c for c in self.connections if c.open]

    def acks_for(self, envelope_id: str) -> list[Ack]:
        return [ack for ack in self.acks if ack.envelope_id == envelope_id]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
        """Poll ``predicate`` until it holds; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"condition not met; connections: {[(c.number, c.open) for c in self.connections]}, "
                    f"acks: {[a.envelope_id for a in self.acks]}"
                )
            await asyncio.sleep(0.01)

    async def connected(self, timeout: float = WAIT_SECONDS) -> Connection:
        """The newest open connection, once there is one (and its ``hello`` is sent)."""
        await self.wait_for(lambda: any(c.sent for c in self.live), timeout)
        return [c for c in self.live if c.sent][-1]

    def envelope(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> dict[str, Any]:
        """An envelope as Slack sends it over the socket."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"not a Socket Mode envelope type: {type}")
        accepts = type == "slash_commands" or (
            type == "interactive" and payload.get("type") in RESPONSE_INTERACTIONS
        )
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "type": type,
            "payload": dict(payload),
            "accepts_response_payload": accepts,
        }
        if type == "events_api":
            envelope |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        return envelope

    async def send(self, envelope: Mapping[str, Any]) -> str:
        """Send an envelope (or the same one again, as Slack redelivers it) on the newest connection."""
        connection = await self.connected()
        await self._send(connection, dict(envelope))
        return str(envelope["envelope_id"])

    async def deliver(self, type: str, payload: Mapping[str, Any], **options: Any) -> Ack:
        """Send a payload in a new envelope and wait for its acknowledgement."""
        envelope = self.envelope(type, payload, **options)
        return await self.deliver_envelope(envelope)

    async def deliver_envelope(self, envelope: Mapping[str, Any], timeout: float = WAIT_SECONDS) -> Ack:
        """Send this envelope and wait for one more acknowledgement of its id than there was before."""
        envelope_id = str(envelope["envelope_id"])
        before = len(self.acks_for(envelope_id))
        await self.send(envelope)
        await self.wait_for(lambda: len(self.acks_for(envelope_id)) > before, timeout)
        return self.acks_for(envelope_id)[-1]

    async def disconnect(self, reason: str = "refresh_requested") -> Connection:
        """Ask the client on the newest connection to reconnect, as Slack does before it retires a socket."""
        connection = await self.connected()
        debug_info = {"host": f"applink-fake-{connection.number}"}
        await self._send(connection, {"type": "disconnect", "reason": reason, "debug_info": debug_info})
        return connection

    # --- Web API: apps.connections.open ---------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        authorization = request.headers.get("Authorization")
        if method != OPEN and authorization != f"Bearer {self.app_token}":
            return await super()._api(request)
        encoding, args = await self._arguments(request)
        self.calls.append(Call(method, request.method, encoding, args, authorization, time.monotonic()))
        if method != OPEN:  # the app token is good for apps.connections.open only
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        retry_after = self._rate_limited.pop(method, None)
        if retry_after is not None:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
            )
        if authorization is None:
            return web.json_response({"ok": False, "error": "not_authed"})
        if authorization.startswith(("Bearer xoxb-", "Bearer xoxp-")):
            return web.json_response({"ok": False, "error": "not_allowed_token_type"})
        if authorization != f"Bearer {self.app_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        base = self.ticket_base or self.socket_base
        return web.json_response({"ok": True, "url": f"{base}/link/?ticket={ticket}&app_id={self.app_id}"})

    # --- the WebSocket --------------------------------------------------------------------------

    async def _send(self, connection: Connection, frame: dict[str, Any]) -> None:
        if not connection.open:
            raise ConnectionError(f"connection {connection.number} is closed")
        connection.sent.append(frame)
        await connection.socket.send_str(json.dumps(frame))

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid or used ticket")
        self._tickets.discard(ticket)
        socket = web.WebSocketResponse()
        connection = Connection(number=next(self._numbers), ticket=ticket, socket=socket)
        self.connections.append(connection)
        try:
            await socket.prepare(request)
            await self._send(
                connection,
                {
                    "type": "hello",
                    "num_connections": len(self.live),
                    "debug_info": {
                        "host": f"applink-fake-{connection.number}",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                },
            )
            async for frame in socket:
                if frame.type is WSMsgType.TEXT:
                    self._received(connection, str(frame.data))
                elif frame.type is WSMsgType.BINARY:
                    connection.unexpected.append(repr(frame.data))
            connection.closed_by_client = not connection.closed_by_server
        finally:
            connection.close_code = socket.close_code
            connection.closed.set()
        return socket

    def _received(self, connection: Connection, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            connection.unexpected.append(data)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("envelope_id"), str):
            connection.unexpected.append(data)
            return
        payload = frame.get("payload")
        self.acks.append(
            Ack(
                envelope_id=frame["envelope_id"],
                payload=payload if isinstance(payload, dict) else None,
                connection=connection.number,
                at=time.monotonic(),
            )
        )


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound once to find it, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections, reads what it is sent and never answers: a
    WebSocket host whose handshake hangs. :attr:`accepted` and :attr:`closed` count the connections a client
    opened and closed."""

    accepted: int = 0
    closed: int = 0
    base: str = ""
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _handlers: list[asyncio.Task[Any]] = field(default_factory=list)

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = int(self._server.sockets[0].getsockname()[1])
        self.base = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.append(task)
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        finally:
            self.closed += 1
            writer.close()
