"""The audit trail: one row per security-relevant event."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["AuditEvent"]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)  # JSON


# The account activity page: one person's events of the last days, newest first (``storage.people.recent_events``).
# Only events that name a person: every query of it asks ``user_id = ?`` (migration 0020).
Index(
    "ix_audit_events_user_id_at",
    AuditEvent.user_id,
    AuditEvent.at,
    sqlite_where=AuditEvent.user_id.is_not(None),
    postgresql_where=AuditEvent.user_id.is_not(None),
)
# The admin API's audit search: by event or by client over a time range, newest first.
Index("ix_audit_events_event_at", AuditEvent.event, AuditEvent.at)
Index("ix_audit_events_client_id_at", AuditEvent.client_id, AuditEvent.at)
# The alert rules' failed sign-ins per address over a window (admin/alert_rules.py; migration 0018). Only events
# that did not succeed: the count says so (storage/alert_cursor.py ``_count_sql``; migration 0020).
Index(
    "ix_audit_events_ip_at",
    AuditEvent.ip,
    AuditEvent.at,
    sqlite_where=AuditEvent.outcome != "success",
    postgresql_where=AuditEvent.outcome != "success",
)
