"""Counters shared by every process: fixed-window rate limits and recent failed sign-ins."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["RateLimit", "SigninFailure"]


class RateLimit(Base):
    """A fixed-window counter shared by every process: the key names the limit and its subject."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class SigninFailure(Base):
    """Recent failed sign-ins of one subject (an account, an address, or both), for progressive delays."""

    __tablename__ = "signin_failures"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # digest of the kind and subject
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # forgotten after this
