"""The second factor at rest: a person's TOTP secret (sealed, since it must be recovered to check a code) and their
recovery codes (keyed digests). Every "use once" is one compare-and-set statement, as codes and tokens are."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from .schema import RecoveryCode, TotpSecret

__all__ = [
    "TotpRow",
    "confirm_totp",
    "recovery_codes_left",
    "remove_second_factor",
    "replace_recovery_codes",
    "start_totp",
    "totp_for",
    "use_recovery_code",
    "use_totp_step",
]


@dataclass(frozen=True, slots=True)
class TotpRow:
    sealed: bytes
    confirmed_at: int | None
    last_used_step: int | None
    created_at: int


def totp_for(conn: Connection, user_id: str) -> TotpRow | None:
    t = TotpSecret
    row = conn.execute(
        select(t.secret, t.confirmed_at, t.last_used_step, t.created_at).where(t.user_id == user_id)
    ).first()
    return TotpRow(row.secret, row.confirmed_at, row.last_used_step, row.created_at) if row else None


def start_totp(conn: Connection, user_id: str, sealed: bytes, at: int) -> bool:
    """Keep a new, unconfirmed secret; False when the person already has a confirmed one (remove it first)."""
    conn.execute(delete(TotpSecret).where(TotpSecret.user_id == user_id, TotpSecret.confirmed_at.is_(None)))
    if totp_for(conn, user_id) is not None:
        return False
    conn.execute(
        insert(TotpSecret),
        {"user_id": user_id, "secret": sealed, "confirmed_at": None, "last_used_step": None, "created_at": at},
    )
    return True


def confirm_totp(conn: Connection, user_id: str, step: int, at: int) -> bool:
    """The first code proved the app holds the secret: it becomes the person's second factor."""
    t = TotpSecret
    result = conn.execute(
        update(t).where(t.user_id == user_id, t.confirmed_at.is_(None)).values(confirmed_at=at, last_used_step=step)
    )
    return result.rowcount == 1


def use_totp_step(conn: Connection, user_id: str, step: int) -> bool:
    """RFC 6238 §5.2: accept a time step once; of two requests with the same code, one wins."""
    t = TotpSecret
    result = conn.execute(
        update(t)
        .where(
            t.user_id == user_id,
            t.confirmed_at.is_not(None),
            or_(t.last_used_step.is_(None), t.last_used_step < step),
        )
        .values(last_used_step=step)
    )
    return result.rowcount == 1


def remove_second_factor(conn: Connection, user_id: str) -> bool:
    removed = conn.execute(delete(TotpSecret).where(TotpSecret.user_id == user_id)).rowcount
    conn.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    return removed == 1


def replace_recovery_codes(conn: Connection, user_id: str, digests: list[str], at: int) -> None:
    """A new set: every earlier code stops working."""
    conn.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    conn.execute(insert(RecoveryCode), [{"digest": d, "user_id": user_id, "created_at": at} for d in digests])


def use_recovery_code(conn: Connection, user_id: str, code_digest: str, at: int) -> bool:
    r = RecoveryCode
    result = conn.execute(
        update(r).where(r.digest == code_digest, r.user_id == user_id, r.used_at.is_(None)).values(used_at=at)
    )
    return result.rowcount == 1


def recovery_codes_left(conn: Connection, user_id: str) -> int:
    r = RecoveryCode
    left = select(func.count()).select_from(r).where(r.user_id == user_id, r.used_at.is_(None))
    return int(conn.execute(left).scalar_one())
