"""The pages behind the links frontdesk mails (``oauth.email_links``): "forgot your password?", choosing a new
password from a reset link, confirming an address from a verification link, and "send me a confirmation email"
on the account page.

"Forgot password" answers the same words, at once, whatever was typed: the lookup and the sending run after the
answer (a background task), so neither the page nor its timing says whether an account exists. A link's page
asks before it uses the link (a button, not the visit): mail scanners open links to look at them, and must not use
them up. The forms of a link's page are bound to the link itself: only someone holding it can post them.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import Frontdesk
from ..errors import OAuthError, RateLimited
from ..oauth import account
from ..oauth.account import Visitor
from ..oauth.email_change import EmailProblem, change_email
from ..oauth.email_links import (
    EmailUnavailable,
    LinkProblem,
    Verified,
    email_configured,
    forgot_password,
    forgot_password_limits,
    reset_link_for,
    reset_password,
    start_email_verification,
    verify_email,
    verify_link_problem,
)
from ..oauth.email_messages import duration
from ..oauth.password import PasswordProblem
from ..protocol.forms import Params
from ..secret import same
from .account import posted, render
from .authorize import problem, too_many
from .form_binding import binding_of, checked_form, keep_binding
from .http import client_ip, read_form
from .pages import page

__all__ = ["change_address", "forgot", "reset", "routes", "send_verification", "verify"]

TOKEN_MAX = 200  # a link's secret is about 50 characters; anything longer is not one
_NO_EMAIL = "Password reset by email is not available on this server. Ask the people who run it to reset your password."
_LINK_PROBLEMS = {
    LinkProblem.UNKNOWN: "This link does not work. It may have been copied only in part, or a newer email replaced it.",
    LinkProblem.USED: "This link was used already. Each link works once.",
    LinkProblem.EXPIRED: "This link has expired.",
    LinkProblem.ADDRESS_CHANGED: "This link went to an email address the account no longer has.",
    LinkProblem.DISABLED: "This account is disabled. Ask the people who run this server.",
}
_PASSWORD_PROBLEMS = {
    PasswordProblem.NOT_REPEATED: "The two passwords are not the same. Type them again.",
    PasswordProblem.TOO_SHORT: "Choose a password of at least 8 characters.",
}


def _link_csrf(fd: Frontdesk, purpose: str, token: str) -> str:
    """A link page's CSRF token: bound to the link, which only its holder knows."""
    return fd.csrf_token(f"email-link:{purpose}:{token}")


def _link_page(problem_: LinkProblem, again: str, again_text: str) -> Response:
    status = 410 if problem_ in (LinkProblem.USED, LinkProblem.EXPIRED) else 400
    message = _LINK_PROBLEMS[problem_]
    return page("done.html", status, title="This link does not work", message=message, link=again, link_text=again_text)


# --- forgot password --------------------------------------------------------------------------------------------


async def forgot(request: Request) -> Response:
    """``/password/forgot``: a username or an address, then the same answer whatever it was."""
    fd: Frontdesk = request.app.state.fd
    if not email_configured(fd):
        return page("done.html", title="Forgot your password?", message=_NO_EMAIL)
    if request.method == "GET":
        binding = binding_of(request, fd)
        return keep_binding(
            page("forgot_password.html", title="Forgot your password?", csrf=binding.csrf(fd)), fd, binding
        )
    form = await checked_form(request, fd)
    if isinstance(form, Response):
        return form
    ip = client_ip(request)
    try:
        await run_in_threadpool(forgot_password_limits, fd, ip)
    except RateLimited as exc:
        return too_many(exc)
    lifetime = duration(fd.settings.email.reset_link_lifetime)
    message = (
        "If an account here matches what you typed, we are emailing its address a link to choose a new password."
        f" The link works for {lifetime}. It can take a few minutes to arrive; look in your spam folder too."
    )
    response = page(
        "done.html", title="Check your email", message=message, link="/account", link_text="Back to sign in"
    )
    response.background = BackgroundTask(forgot_password, fd, form.get("login", ""), ip)
    return response


# --- reset password ---------------------------------------------------------------------------------------------


def _reset_form(
    fd: Frontdesk, token: str, username: str | None, status: int = 200, message: str | None = None
) -> Response:
    return page(
        "reset_password.html",
        status,
        title="Choose a new password",
        csrf=_link_csrf(fd, "reset", token),
        token=token,
        username=username,
        message=message,
    )


def _reset_shown(fd: Frontdesk, token: str) -> Response:
    found = reset_link_for(fd, token)
    if isinstance(found, LinkProblem):
        return _link_page(found, "/password/forgot", "Send me a new link")
    return _reset_form(fd, token, found)


def _reset(fd: Frontdesk, token: str, form: Params, ip: str | None) -> Response:
    outcome = reset_password(fd, token, form.get("new_password", ""), form.get("repeat_password", ""), ip)
    if isinstance(outcome, LinkProblem):
        return _link_page(outcome, "/password/forgot", "Send me a new link")
    if isinstance(outcome, PasswordProblem):
        return _reset_form(fd, token, None, 400, _PASSWORD_PROBLEMS[outcome])
    message = (
        f"The password of {outcome.username} is changed. For your safety you were signed out everywhere, and apps"
        " you let in will ask you to sign in again."
    )
    return page("done.html", title="Password changed", message=message, link="/account", link_text="Sign in")


async def _link_form(request: Request, fd: Frontdesk, purpose: str) -> tuple[str, Params] | Response:
    """A link page's POST: the link (field ``t``) and the form, its CSRF field checked against that link."""
    try:
        form = await read_form(request, fd.settings.max_body_bytes)
    except OAuthError:
        return problem("Invalid request", "The form could not be read.")
    token = form.get("t", "")[:TOKEN_MAX]
    if not token or not same(form.get("csrf", ""), _link_csrf(fd, purpose, token)):
        return problem("This form has expired", "Open the link from the email again.", 403)
    return token, form


async def reset(request: Request) -> Response:
    """``/password/reset?t=…``: the form for a new password, while the link works; posting it uses the link."""
    fd: Frontdesk = request.app.state.fd
    if request.method == "GET":
        return await run_in_threadpool(_reset_shown, fd, request.query_params.get("t", "")[:TOKEN_MAX])
    posted_link = await _link_form(request, fd, "reset")
    if isinstance(posted_link, Response):
        return posted_link
    token, form = posted_link
    return await run_in_threadpool(_reset, fd, token, form, client_ip(request))


# --- verify an address ------------------------------------------------------------------------------------------


def _verify_shown(fd: Frontdesk, token: str) -> Response:
    found = verify_link_problem(fd, token)
    if found is not None:
        return _link_page(found, "/account", "Go to your account")
    return page(
        "verify_email.html", title="Confirm your email address", csrf=_link_csrf(fd, "verify", token), token=token
    )


def _verified(fd: Frontdesk, token: str, ip: str | None) -> Response:
    outcome = verify_email(fd, token, ip)
    if isinstance(outcome, LinkProblem):
        return _link_page(outcome, "/account", "Go to your account")
    message = f"{outcome.email} is confirmed as the address of {outcome.username}."
    if isinstance(outcome, Verified) and outcome.signup:
        message += " Your account is ready: you can sign in now."
    return page(
        "done.html", title="Address confirmed", message=message, link="/account", link_text="Go to your account"
    )


async def verify(request: Request) -> Response:
    """``/email/verify?t=…``: a button that confirms the address (opening the link alone changes nothing)."""
    fd: Frontdesk = request.app.state.fd
    if request.method == "GET":
        return await run_in_threadpool(_verify_shown, fd, request.query_params.get("t", "")[:TOKEN_MAX])
    posted_link = await _link_form(request, fd, "verify")
    if isinstance(posted_link, Response):
        return posted_link
    token, _ = posted_link
    return await run_in_threadpool(_verified, fd, token, client_ip(request))


def _send_verification(fd: Frontdesk, visitor: Visitor, ip: str | None) -> Response:
    """From the profile page: mail the signed-in person a link for their current address."""
    try:
        start_email_verification(fd, visitor.person.id, requested_by="self", ip=ip)
    except RateLimited as exc:
        return too_many(exc)
    except EmailUnavailable as exc:
        return _profile(fd, visitor, 503, message=_sentence(str(exc)))
    lifetime = duration(fd.settings.email.verify_link_lifetime)
    return _profile(fd, visitor, notice=f"We sent a link to {visitor.person.email}. Open it within {lifetime}.")


def _profile(fd: Frontdesk, visitor: Visitor, status: int = 200, **words: str) -> Response:
    """The profile page again, with what the form did (``notice``) or what was wrong (``message``)."""
    counts = account.overview(fd, visitor)
    return render(
        fd, visitor, "account.html", "/account", status, counts=counts, email_links=email_configured(fd), **words
    )


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


async def send_verification(request: Request) -> Response:
    """``POST /account/email/verify``: "send me a confirmation email"."""
    return await posted(request, lambda fd, visitor, _, ip: _send_verification(fd, visitor, ip))


_EMAIL_PROBLEMS = {
    EmailProblem.NOT_AN_ADDRESS: "That does not look like an email address. Type it again.",
    EmailProblem.UNCHANGED: "That is the address you have already.",
}


def _change_email(fd: Frontdesk, visitor: Visitor, form: Params, ip: str | None) -> Response:
    """From the profile page: a new address, unconfirmed, and (with email set up) a link to confirm it."""
    outcome = change_email(fd, visitor.person, form.get("email", "")[:400], ip)
    if isinstance(outcome, EmailProblem):
        return _profile(fd, visitor, 400, message=_EMAIL_PROBLEMS[outcome])
    if outcome.link_sent:
        lifetime = duration(fd.settings.email.verify_link_lifetime)
        notice = f"Your address is now {outcome.email}. We sent a link to it: open it within {lifetime} to confirm it."
    elif outcome.mail_problem is not None:
        notice = f"Your address is now {outcome.email}. We could not send a link to confirm it: {outcome.mail_problem}."
    else:
        notice = f"Your address is now {outcome.email}."
    changed = replace(visitor, person=replace(visitor.person, email=outcome.email, email_verified=False))
    return _profile(fd, changed, notice=notice)


async def change_address(request: Request) -> Response:
    """``POST /account/email``: a new address; like the password, after a recent sign-in."""
    return await posted(request, _change_email, fresh_sign_in="/account")


def routes(fd: Frontdesk) -> list[Route]:
    """The pages of this module (every one answers, email set up or not: without it they say so)."""
    return [
        Route("/password/forgot", forgot, methods=["GET", "POST"]),
        Route("/password/reset", reset, methods=["GET", "POST"]),
        Route("/email/verify", verify, methods=["GET", "POST"]),
        Route("/account/email/verify", send_verification, methods=["POST"]),
        Route("/account/email", change_address, methods=["POST"]),
    ]
