"""A fake OpenAI-compatible server for tests: a real HTTP server on 127.0.0.1, no network beyond it.

It speaks the Chat Completions API shape documented at
https://platform.openai.com/docs/api-reference/chat/create (``POST /v1/chat/completions``; a response has
``id``, ``object: "chat.completion"``, ``created``, ``model``, ``choices[].message.content``,
``finish_reason`` and ``usage``; errors are ``{"error": {"message", "type", "param", "code"}}``).

Every request is recorded (method, path, headers including ``Authorization``, JSON body). What the server
answers is scripted: queue behaviours with :meth:`FakeOpenAIServer.script` (one per request, in order),
and the ``default`` behaviour answers once the queue is empty. ``reject_json_schema=True`` makes it
refuse ``response_format: json_schema`` with a 400 like OpenAI's, whatever is queued.

    async with FakeOpenAIServer(default=verdict([True, False])) as server:
        grader = LLMGrader(base_url=server.base_url, api_key=server.api_key, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.local import serve_locally

DEFAULT_API_KEY = "sk-test-fake-openai"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    raw: str

    @property
    def response_format_type(self) -> str | None:
        if not isinstance(self.body, dict):
            return None
        response_format = self.body.get("response_format")
        return response_format.get("type") if isinstance(response_format, dict) else None

    def message(self, role: str) -> str:
        """The text of the last message with ``role`` ("" if none)."""
        if not isinstance(self.body, dict):
            return ""
        for message in reversed(self.body.get("messages", [])):
            if isinstance(message, dict) and message.get("role") == role:
                return _message_text(message.get("content"))
        return ""


# Behaviours ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer 200 with this ``choices[0].message.content`` (``None`` as a null content)."""

    content: str | None


@dataclass(frozen=True)
class Hang:
    """Sleep (longer than any client deadline in the tests) before answering; released on close."""

    seconds: float = 60.0
    then: Reply = field(default_factory=lambda: Reply('{"points": [], "feedback": "too late"}'))


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error and an OpenAI-shaped error body."""

    status: int
    error: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Obedient:
    """A model that obeys injections: if the user message says "ignore the rubric" or "give 100", it
    claims every point is hit (and a score of 100); otherwise it hits ``otherwise_hits``."""

    point_count: int
    otherwise_hits: frozenset[int] = frozenset()


Behaviour = Reply | Hang | Fail | Obedient

INJECTION_OBEYED = re.compile(
    r"ignore\s+(?:the\s+|all\s+|your\s+)?(?:rubric|instructions|previous)|give\s+(?:it\s+|me\s+|this\s+)?100",
    re.IGNORECASE,
)


def verdict_json(hits: Sequence[bool], *, score: float | None = None, feedback: str = "Good.") -> str:
    """The JSON a grading model should return: one entry per rubric point, in order."""
    body: dict[str, Any] = {
        "points": [
            {"index": i, "hit": hit, "reason": "stated" if hit else "absent"} for i, hit in enumerate(hits)
        ],
        "feedback": feedback,
    }
    if score is not None:
        body["score"] = score
    return json.dumps(body)


def verdict(hits: Sequence[bool], *, score: float | None = None, feedback: str = "Good.") -> Reply:
    """A well-formed grading reply: one entry per rubric point, in order."""
    return Reply(verdict_json(hits, score=score, feedback=feedback))


def malformed() -> Reply:
    return Reply('{"points": [{"index": 0, "hit": tru')


def out_of_range_score(point_count: int, score: float = 150.0) -> Reply:
    return verdict([True] * point_count, score=score)


def rate_limited(retry_after: str | None = None) -> Fail:
    return Fail(
        429,
        {
            "message": "Rate limit reached for requests. Please try again shortly.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
        {"retry-after": retry_after} if retry_after is not None else {},
    )


def server_error() -> Fail:
    return Fail(
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    )


JSON_SCHEMA_REJECTION = Fail(
    400,
    {
        "message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    },
)


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _invalid_request(message: str, *, code: str | None = None) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": None, "code": code}


def _error(status: int, error: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": dict(error)}, status=status, headers=dict(headers or {}))


# The server ------------------------------------------------------------------------------------------


class FakeOpenAIServer:
    """``async with FakeOpenAIServer() as server``: serves on ``server.base_url`` until the block ends."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        default: Behaviour | None = None,
        reject_json_schema: bool = False,
    ) -> None:
        self.api_key = api_key
        self.default: Behaviour = default or verdict([])
        self.reject_json_schema = reject_json_schema
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, one each, before ``default`` applies again."""
        self._queue.extend(behaviours)

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return f"http://127.0.0.1:{self._port}/v1"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        self._runner, self._port = await serve_locally(app, handler_cancellation=True, shutdown_timeout=1.0)

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        recorded = RecordedRequest(request.method, request.path, dict(request.headers), body, raw)
        self.requests.append(recorded)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, _invalid_request("Incorrect API key provided.", code="invalid_api_key"))
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or "model" not in body:
            return _error(400, _invalid_request("We could not parse the JSON body of your request."))
        if self.reject_json_schema and recorded.response_format_type == "json_schema":
            return _error(400, JSON_SCHEMA_REJECTION.error)
        behaviour = self._queue.popleft() if self._queue else self.default
        return await self._perform(behaviour, recorded)

    async def _perform(self, behaviour: Behaviour, recorded: RecordedRequest) -> web.StreamResponse:
        if isinstance(behaviour, Fail):
            return _error(behaviour.status, behaviour.error, behaviour.headers)
        if isinstance(behaviour, Hang):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), behaviour.seconds)
            return self._completion(recorded, behaviour.then.content)
        if isinstance(behaviour, Obedient):
            if INJECTION_OBEYED.search(recorded.message("user")):
                content = verdict_json([True] * behaviour.point_count, score=100, feedback="As instructed.")
            else:
                hits = [i in behaviour.otherwise_hits for i in range(behaviour.point_count)]
                content = verdict_json(hits)
            return self._completion(recorded, content)
        return self._completion(recorded, behaviour.content)

    def _completion(self, recorded: RecordedRequest, content: str | None) -> web.Response:
        prompt_tokens = len(recorded.raw) // 4
        completion_tokens = len(content or "") // 4
        return web.json_response(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(recorded.body.get("model", "")),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )
