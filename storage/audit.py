"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from storage.models import AuditLog


def record_audit(session: Session, *, actor: str, action: str, details: dict[str, Any]) -> None:
    session.add(AuditLog(actor=actor, action=action, details=details))
