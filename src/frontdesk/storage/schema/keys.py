"""The signing key ring (RFC 7517 keys, sealed under the master key), rotated through next, active, retired."""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["SigningKey"]


class SigningKey(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))  # next | active | retired
    private_jwk: Mapped[bytes] = mapped_column(LargeBinary)  # AES-256-GCM envelope
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # A retired key stays published until everything it signed has expired.
    publish_until: Mapped[int | None] = mapped_column(BigInteger)
