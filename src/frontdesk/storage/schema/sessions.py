"""Browser sessions, the authorization requests waiting for a person, and what a session's end must reach
(OpenID Connect Back-Channel Logout 1.0)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["Interaction", "LogoutDelivery", "Session", "SessionGrant"]


class Session(Base):
    """A signed-in browser. The cookie holds the token; the row its digest, and a public id for the account page."""

    __tablename__ = "sessions"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    amr: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # absolute end
    last_seen_at: Mapped[int] = mapped_column(BigInteger)  # idle end = last_seen_at + lifetimes.session_idle
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(String(64))


class Interaction(Base):
    """An authorization request waiting for the person: sign-in and consent work on its id."""

    __tablename__ = "interactions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    binding_digest: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)  # JSON
    user_id: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    # Who passed the first factor and how, while the second is still owed; user_id is set only once both are done.
    pending_user_id: Mapped[str | None] = mapped_column(String(64))
    pending_amr: Mapped[str | None] = mapped_column(Text)  # JSON array
    # The session whose sign-in this interaction carries (``sessions.id``): consent and the code are answered only
    # to a browser that still holds it (revision 0009).
    session_id: Mapped[str | None] = mapped_column(String(32))


class SessionGrant(Base):
    """A grant issued in a browser session: the clients to tell when that session ends (Back-Channel Logout 1.0)."""

    __tablename__ = "session_grants"
    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sid: Mapped[str] = mapped_column(String(32), index=True)  # the session's public id, the ID token's ``sid``
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # the session's longest possible end


class LogoutDelivery(Base):
    """The outbox of logout tokens still to deliver: a restart loses none. The token is signed at each attempt
    from these claims, so no bearer-like artefact rests in the database."""

    __tablename__ = "logout_deliveries"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
