"""The HTTP app: health and readiness, the CRM activity API, and the chat platforms' webhook routes.

One ASGI app (FastAPI) per process. Platform routes are mounted by the adapters that need them; this
module owns the routes every deployment has.
"""

# No `from __future__ import annotations` here: FastAPI resolves the Depends() in annotations at runtime,
# and the dependencies are closures of create_app().

import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, text

from content.loading import import_activity_rows
from content.problems import ContentError
from storage.models import ActivitySource
from storage.runner import StorageRunner

MAX_ACTIVITIES_PER_REQUEST = 5000
Readiness = Callable[[], Awaitable[dict[str, bool]]]


class ActivityIn(BaseModel):
    """One activity, as in the CSV format of DESIGN.md."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    type: str = Field(max_length=64)
    occurred_at: datetime | date | str = Field(description="ISO 8601; without an offset, the rep's time zone")
    count: int | None = Field(default=None, description="defaults to 1")
    value: float | None = None
    account: str | None = Field(default=None, max_length=200)
    external_id: str | None = Field(default=None, max_length=180, description="makes re-posting idempotent")
    note: str | None = Field(default=None, max_length=2000)
    follow_up_on: date | None = None


class ActivitiesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activities: list[ActivityIn] = Field(min_length=1, max_length=MAX_ACTIVITIES_PER_REQUEST)


class ActivitiesOut(BaseModel):
    added: int
    updated: int
    unchanged: int


class RowProblem(BaseModel):
    row: int = Field(description="1-based index into `activities`")
    message: str


class ActivitiesRejected(BaseModel):
    detail: str
    problems: list[RowProblem]


def _as_row(activity: ActivityIn) -> dict[str, str]:
    """The CSV row this activity would be, so the API and the importer validate identically."""
    values = activity.model_dump()
    row: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            row[name] = ""
        elif isinstance(value, date | datetime):
            row[name] = value.isoformat()
        else:
            row[name] = str(value)
    return row


def _token_checker(tokens: Sequence[str]) -> Callable[..., Awaitable[str]]:
    bearer = HTTPBearer(auto_error=False)
    encoded = [token.encode("utf-8") for token in tokens]

    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        offered = credentials.credentials.encode("utf-8") if credentials is not None else b""
        matched = None
        for index, token in enumerate(encoded):
            # Compare against every token, in constant time, whatever matches first.
            if hmac.compare_digest(offered, token):
                matched = index
        if credentials is None or matched is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is required",
                {"WWW-Authenticate": "Bearer"},
            )
        return f"api:token-{matched + 1}"

    return check


def create_app(
    *,
    engine: Engine,
    runner: StorageRunner,
    api_tokens: Sequence[str],
    default_timezone: str,
    readiness: Readiness | None = None,
    routers: Sequence[APIRouter] = (),
    lifespan: Any = None,
) -> FastAPI:
    """The app, with its dependencies passed in (nothing is created at import time)."""
    app = FastAPI(
        title="coachbot",
        summary="Chat coach for sales teams: health, readiness and the activity API for CRMs.",
        lifespan=lifespan,
    )
    authorised = _token_checker(api_tokens)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process is serving HTTP."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: the database answers and every configured chat adapter has started."""
        checks: dict[str, bool] = {}
        try:
            await runner.run(_ping, engine)
            checks["database"] = True
        except Exception:
            checks["database"] = False
        if readiness is not None:
            checks.update(await readiness())
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.post(
        "/api/activities",
        tags=["activities"],
        response_model=ActivitiesOut,
        responses={401: {"description": "missing or wrong bearer token"}, 422: {"model": ActivitiesRejected}},
    )
    async def post_activities(
        body: ActivitiesIn, actor: Annotated[str, Depends(authorised)]
    ) -> ActivitiesOut | JSONResponse:
        """Log activities from a CRM: all or none, checked like the CSV import, idempotent by external_id."""
        rows = [(index, _as_row(activity)) for index, activity in enumerate(body.activities, start=1)]
        try:
            report = await runner.run(
                lambda: import_activity_rows(
                    engine,
                    rows,
                    file="request",
                    actor=actor,
                    default_timezone=default_timezone,
                    source=ActivitySource.API,
                )
            )
        except ContentError as exc:
            problems = [RowProblem(row=p.line, message=p.message) for p in exc.errors]
            rejected = ActivitiesRejected(detail="no activity was stored", problems=problems)
            return JSONResponse(rejected.model_dump(), status_code=422)
        return ActivitiesOut(added=report.added, updated=report.updated, unchanged=report.unchanged)

    for router in routers:
        app.include_router(router)
    return app


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
