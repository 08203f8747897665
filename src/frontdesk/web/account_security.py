"""The account's Security page: the password, passkeys (WebAuthn registration, names, removal) and the second step
at sign-in (enrolling an authenticator app, recovery codes, turning it off).

Changing the password needs the current one. Adding or removing a passkey and changing the second factor need a
recent sign-in (``lifetimes.recent_sign_in``): a stolen session cookie alone can neither plant a way back in nor take
the owner's away.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..core import Frontdesk
from ..errors import RateLimited
from ..oauth import account, passkeys, password, second_factor
from ..oauth.account import Visitor
from ..oauth.passkeys import PasskeyError
from ..oauth.password import PasswordProblem
from ..oauth.signin_throttle import Refusal
from ..protocol.forms import Params
from .account import back_to, posted, reauthenticated, render, signed_in_visitor, visitor_form
from .authorize import too_many
from .http import client_ip, json_response
from .throttle import too_many_attempts

__all__ = [
    "add_passkey",
    "change_password",
    "enrol_second_factor",
    "passkey_options",
    "recovery_codes",
    "remove_passkey_form",
    "rename_passkey_form",
    "security",
    "security_page",
    "turn_off_second_factor",
]

HERE = "/account/security"
ENROL = "/account/second-factor"
_NOTICES = {
    "password": "Your password is changed. Your other browsers are signed out.",
    "passkey-added": "Your passkey is added. Next time you sign in, choose “Use a passkey”.",
    "passkey-renamed": "The passkey is renamed.",
    "passkey-removed": "The passkey is removed. It can no longer sign you in.",
    "second-factor-off": "The second step is off. Only your password (and your passkeys) protect your account now.",
}
_PASSWORD_PROBLEMS = {
    PasswordProblem.WRONG_CURRENT: "Your current password is not right.",
    PasswordProblem.NOT_REPEATED: "The two new passwords are not the same. Type them again.",
    PasswordProblem.TOO_SHORT: "Choose a new password of at least 8 characters.",
    PasswordProblem.UNCHANGED: "The new password is the same as the current one. Choose another.",
}


def security_page(
    fd: Frontdesk, visitor: Visitor, status: int = 200, *, message: str | None = None, done: str | None = None
) -> Response:
    shown = account.security(fd, visitor.person.id)
    return render(
        fd,
        visitor,
        "account_security.html",
        HERE,
        status,
        passkeys=shown.passkeys,
        second_factor=shown.second_factor,
        recovery_left=shown.recovery_left,
        message=message,
        notice=_NOTICES.get(done or ""),
        scripts=True,
    )


async def security(request: Request) -> Response:
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    done = request.query_params.get("done")
    return await run_in_threadpool(lambda: security_page(request.app.state.fd, visitor, done=done))


# --- password ---------------------------------------------------------------------------------------------------


def _change_password(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    outcome = password.change_password(
        fd,
        visitor.person,
        visitor.session.id,
        form.get("current_password", ""),
        form.get("new_password", ""),
        form.get("repeat_password", ""),
        ip,
    )
    if isinstance(outcome, Refusal):
        return too_many_attempts(outcome)
    if isinstance(outcome, PasswordProblem):
        return security_page(fd, visitor, 400, message=_PASSWORD_PROBLEMS[outcome])
    return back_to(HERE, done="password")


async def change_password(request: Request) -> Response:
    """A new password, given the current one; every other browser is signed out."""
    return await posted(request, _change_password)


# --- passkeys ---------------------------------------------------------------------------------------------------


def _registration_options(fd: Frontdesk, visitor: Visitor) -> Response:
    return json_response(json.loads(passkeys.registration_options(fd, visitor.person)))


async def passkey_options(request: Request) -> Response:
    """The challenge for adding a passkey, fetched by the page's script with the form's CSRF token."""
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return json_response({"redirect": visitor.headers["location"]}, 401, _cookies(visitor))
    form = await visitor_form(request, visitor)
    if isinstance(form, Response):
        return json_response({"message": "This page has expired. Reload it and try again."}, 403)
    again = await reauthenticated(request, visitor, HERE, json=True)
    if again is not None:
        return again
    return await run_in_threadpool(_registration_options, request.app.state.fd, visitor)


def _cookies(response: Response) -> dict[str, str]:
    cookie = response.headers.get("set-cookie")
    return {"Set-Cookie": cookie} if cookie else {}


def _add_passkey(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    try:
        passkeys.register(fd, visitor.person, form.get("credential", ""), form.get("name", ""), ip)
    except PasskeyError as exc:
        return security_page(fd, visitor, 400, message=str(exc))
    return back_to(HERE, done="passkey-added")


async def add_passkey(request: Request) -> Response:
    """The browser's new credential, verified and kept under the name the person chose."""
    return await posted(request, _add_passkey, fresh_sign_in=HERE)


def _rename_passkey(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    renamed = passkeys.rename(fd, visitor.person.id, form.get("passkey", ""), form.get("name", ""), ip)
    if renamed == "unknown":
        return back_to(HERE)
    if renamed == "no_name":
        return security_page(fd, visitor, 400, message="Give the passkey a name, so you can tell it apart.")
    return back_to(HERE, done="passkey-renamed")


def _remove_passkey(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    if not passkeys.remove(fd, visitor.person.id, form.get("passkey", ""), ip):
        return back_to(HERE)
    return back_to(HERE, done="passkey-removed")


async def rename_passkey_form(request: Request) -> Response:
    return await posted(request, _rename_passkey)


async def remove_passkey_form(request: Request) -> Response:
    """Removing a passkey is a security change like adding one: a stolen session cookie alone must not take away
    the owner's way in (or clear the way for an attacker's own), so it needs a recent sign-in first."""
    return await posted(request, _remove_passkey, fresh_sign_in=HERE)


# --- the second factor ------------------------------------------------------------------------------------------


def _enrol_page(fd: Frontdesk, visitor: Visitor, status: int = 200, message: str | None = None) -> Response:
    enrolment = second_factor.start_enrolment(fd, visitor.person)
    if enrolment is None:
        return back_to(HERE)  # already on
    return render(
        fd,
        visitor,
        "enrol_totp.html",
        HERE,
        status,
        title="Set up an authenticator app",
        layout="account_base.html",
        action=ENROL,
        enrolment=enrolment,
        message=message,
    )


def _codes_page(fd: Frontdesk, visitor: Visitor, codes: list[str], replaced: bool) -> Response:
    return render(
        fd,
        visitor,
        "recovery_codes.html",
        HERE,
        title="Save your recovery codes",
        layout="account_base.html",
        codes=codes,
        replaced=replaced,
        next=HERE,
    )


def _confirm(fd: Frontdesk, visitor: Visitor, code: str, ip: str | None) -> Response:
    try:
        codes = second_factor.enrol(fd, visitor.person.id, code, ip)
    except RateLimited as exc:
        return too_many(exc)
    if codes is None:
        wrong = "That code is not right. Type the 6-digit code the app shows now; it changes every 30 seconds."
        return _enrol_page(fd, visitor, 400, wrong)
    return _codes_page(fd, visitor, codes, replaced=False)


async def enrol_second_factor(request: Request) -> Response:
    """GET: the QR code and key of a new secret; POST: the first code from the app, which turns the second step on."""
    visitor = await signed_in_visitor(request)
    if isinstance(visitor, Response):
        return visitor
    fd: Frontdesk = request.app.state.fd
    if request.method == "GET":
        again = await reauthenticated(request, visitor, ENROL)
        if again is not None:
            return again
        return await run_in_threadpool(_enrol_page, fd, visitor)
    form = await visitor_form(request, visitor)
    if isinstance(form, Response):
        return form
    again = await reauthenticated(request, visitor, ENROL)
    if again is not None:
        return again
    return await run_in_threadpool(_confirm, fd, visitor, form.get("code", ""), client_ip(request))


def _turn_off(fd: Frontdesk, visitor: Visitor, ip: str | None) -> Response:
    second_factor.turn_off(fd, visitor.person.id, ip)
    return back_to(HERE, done="second-factor-off")


async def turn_off_second_factor(request: Request) -> Response:
    return await posted(request, lambda fd, visitor, _, ip: _turn_off(fd, visitor, ip), fresh_sign_in=HERE)


def _new_codes(fd: Frontdesk, visitor: Visitor, ip: str | None) -> Response:
    codes = second_factor.renew_recovery_codes(fd, visitor.person.id, ip)
    if codes is None:
        return back_to(HERE)
    return _codes_page(fd, visitor, codes, replaced=True)


async def recovery_codes(request: Request) -> Response:
    """A new set of recovery codes, shown once; the old set stops working."""
    return await posted(request, lambda fd, visitor, _, ip: _new_codes(fd, visitor, ip), fresh_sign_in=HERE)
