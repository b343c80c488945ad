"""The HTTP app: health, readiness and the CRM activity API, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.http import create_app
from content.loading import load_packs, load_roster
from storage.db import make_engine, read_session
from storage.models import Activity, AuditLog
from storage.runner import StorageRunner
from tests.conftest import REPO, Database, snapshot

TOKENS = ("first-token-0123456789", "second-token-0123456789")
AUTH = {"Authorization": f"Bearer {TOKENS[0]}"}


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    load_packs(db.engine, [REPO / "content" / "packs" / "pharma-cardio.yaml"], actor="test")
    load_roster(db.engine, REPO / "content" / "samples" / "roster.yaml", actor="test")
    app = create_app(engine=db.engine, runner=StorageRunner(), api_tokens=TOKENS, default_timezone="UTC")
    with TestClient(app) as test_client:
        yield test_client


def visit(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "email": "alex@example.com",
        "type": "visit",
        "occurred_at": "2026-11-03T10:15:00+01:00",
        "count": 2,
        "account": "Praxis Nord",
        "external_id": "CRM-1",
    }
    row.update(overrides)
    return row


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": True}}


def test_readiness_fails_when_the_database_does_not_answer(tmp_path: Any) -> None:
    engine = make_engine("sqlite:////nonexistent-folder/coachbot.db")
    app = create_app(engine=engine, runner=StorageRunner(), api_tokens=TOKENS, default_timezone="UTC")
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] is False


def test_readiness_includes_the_adapters(db: Database) -> None:
    async def adapters() -> dict[str, bool]:
        return {"telegram": False}

    app = create_app(
        engine=db.engine,
        runner=StorageRunner(),
        api_tokens=TOKENS,
        default_timezone="UTC",
        readiness=adapters,
    )
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "telegram": False}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong-token-0123456789"}, id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKENS[0]}"}, id="not-bearer"),
        pytest.param({"Authorization": f"Bearer {TOKENS[0]}x"}, id="token-prefix"),
    ],
)
def test_activities_need_a_valid_bearer_token(
    client: TestClient, db: Database, headers: dict[str, str]
) -> None:
    before = snapshot(db.engine)
    response = client.post("/api/activities", json={"activities": [visit()]}, headers=headers)
    assert response.status_code == 401
    assert snapshot(db.engine) == before


def test_both_rotated_tokens_are_accepted_and_posting_twice_changes_nothing(
    client: TestClient, db: Database
) -> None:
    first = client.post("/api/activities", json={"activities": [visit()]}, headers=AUTH)
    assert first.status_code == 200
    assert first.json() == {"added": 1, "updated": 0, "unchanged": 0}
    before = snapshot(db.engine)
    second = client.post(
        "/api/activities", json={"activities": [visit()]}, headers={"Authorization": f"Bearer {TOKENS[1]}"}
    )
    assert second.json() == {"added": 0, "updated": 0, "unchanged": 1}
    assert snapshot(db.engine) == before
    with read_session(db.engine) as session:
        activity = session.exec(select(Activity)).one()
        audit = session.exec(select(AuditLog).where(AuditLog.action == "activities.import")).one()
    assert (activity.source, activity.count, activity.external_key) == ("api", 2, "ext:CRM-1")
    assert audit.actor == "api:token-1"
    assert TOKENS[0] not in str(audit.details)


def test_a_corrected_crm_row_updates_the_activity(client: TestClient) -> None:
    client.post("/api/activities", json={"activities": [visit()]}, headers=AUTH)
    response = client.post("/api/activities", json={"activities": [visit(count=3)]}, headers=AUTH)
    assert response.json() == {"added": 0, "updated": 1, "unchanged": 0}


def test_a_bad_row_names_itself_and_nothing_is_stored(client: TestClient, db: Database) -> None:
    before = snapshot(db.engine)
    rows = [
        visit(),
        visit(external_id="CRM-2", email="nobody@example.com"),
        visit(external_id="CRM-3", type="x"),
    ]
    response = client.post("/api/activities", json={"activities": rows}, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "no activity was stored"
    assert [(p["row"], p["message"].split(":")[0]) for p in body["problems"]] == [
        (2, "column email"),
        (3, "column type"),
    ]
    assert snapshot(db.engine) == before


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"activities": []}, id="empty"),
        pytest.param({"activities": [visit(colour="red")]}, id="unknown-field"),
        pytest.param({"rows": [visit()]}, id="wrong-envelope"),
        pytest.param({"activities": [visit(count="many")]}, id="bad-count"),
    ],
)
def test_malformed_bodies_are_refused(client: TestClient, db: Database, payload: dict[str, Any]) -> None:
    before = snapshot(db.engine)
    response = client.post("/api/activities", json=payload, headers=AUTH)
    assert response.status_code == 422
    assert snapshot(db.engine) == before


def test_the_openapi_schema_documents_the_activity_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/api/activities"]["post"]
    assert {"200", "401", "422"} <= set(post["responses"])
    assert "ActivityIn" in schema["components"]["schemas"]
