"""Running the server: admin tokens and admin roles (the admin API and console), and the alerts raised from the
audit trail."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["AdminRole", "AdminToken", "Alert", "AlertCursor", "AlertTally"]


class AdminToken(Base):
    """A bearer token for the admin API (``fd_adm_`` prefix): shown once, kept as a SHA-256 digest."""

    __tablename__ = "admin_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | operator | auditor
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)  # written at most once a minute
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class AdminRole(Base):
    """A person who may use the admin console, and with which role."""

    __tablename__ = "admin_roles"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | operator | auditor
    granted_at: Mapped[int] = mapped_column(BigInteger)
    granted_by: Mapped[str] = mapped_column(String(100))


class Alert(Base):
    """Something in the audit trail that looks like an attack or a failure. Repeats of the same rule and key while
    the alert is open are grouped into it (``count``, ``last_at``), not raised again."""

    __tablename__ = "alerts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    # What the alert is about (a person, an address, a client, a connection, a grant): the grouping key of a rule.
    key: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(16))  # critical | warning | info
    status: Mapped[str] = mapped_column(String(16))  # open | acknowledged | resolved
    summary: Mapped[str] = mapped_column(Text)  # plain words, never a secret
    detail: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON object
    first_at: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[int] = mapped_column(BigInteger, index=True)
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The signed webhook: when it was last delivered (None: not yet, or no webhook configured), and attempts made.
    notified_at: Mapped[int | None] = mapped_column(BigInteger)
    notify_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    # When the webhook is next due (backing off after a failed delivery); None: nothing to send (migration 0018).
    notify_after: Mapped[int | None] = mapped_column(BigInteger, index=True)
    acknowledged_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(100))


# Grouping: the open alert of a rule and key, found by one seek when an event matches the rule again.
Index("ix_alerts_rule_key_status", Alert.rule, Alert.key, Alert.status)


class AlertCursor(Base):
    """How far the alert rules have read the audit trail: the last event id evaluated. Advanced by compare-and-set,
    so when several processes evaluate, each event is evaluated by exactly one of them."""

    __tablename__ = "alert_cursor"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class AlertTally(Base):
    """What a rule counts that the audit trail cannot answer by index, kept by the evaluator as it reads each event
    once: a vault connection's proxied calls per ten-minute ``bucket`` (start time), a connection's run of failed
    refreshes (bucket 0)."""

    __tablename__ = "alert_tallies"
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
