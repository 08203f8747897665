"""``/signup``: a person creates their own account (``oauth.signup``). Only when ``[signup] enabled``: otherwise
the route does not exist and the page is a 404 like any unknown one."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import Frontdesk
from ..errors import RateLimited
from ..oauth.email_messages import duration
from ..oauth.signup import USERNAME_CHARACTERS, SignupProblem, sign_up
from ..protocol.forms import Params
from .authorize import too_many
from .form_binding import Binding, binding_of, checked_form, keep_binding
from .http import client_ip
from .pages import page

__all__ = ["routes", "signup"]

_PROBLEMS = {
    SignupProblem.USERNAME_INVALID: f"Choose a username of {USERNAME_CHARACTERS} (up to 255 characters).",
    SignupProblem.USERNAME_TAKEN: "That username is taken. Choose another.",
    SignupProblem.EMAIL_INVALID: "That does not look like an email address. Type it again.",
    SignupProblem.NOT_REPEATED: "The two passwords are not the same. Type them again.",
    SignupProblem.TOO_SHORT: "Choose a password of at least 8 characters.",
}


def _form(
    fd: Frontdesk, binding: Binding, status: int = 200, message: str | None = None, form: Params | None = None
) -> Response:
    shown = page(
        "signup.html",
        status,
        title="Create an account",
        csrf=binding.csrf(fd),
        message=message,
        username=form.get("username", "") if form else "",
        email=form.get("email", "") if form else "",
        confirm=fd.settings.signup.require_verified_email and bool(fd.settings.email.smtp_url),
    )
    return keep_binding(shown, fd, binding)


def _signed_up(fd: Frontdesk, binding: Binding, form: Params, ip: str | None) -> Response:
    try:
        outcome = sign_up(
            fd,
            form.get("username", ""),
            form.get("email", ""),
            form.get("password", ""),
            form.get("repeat_password", ""),
            ip,
        )
    except RateLimited as exc:
        return too_many(exc)
    if isinstance(outcome, SignupProblem):
        return _form(fd, binding, 400, _PROBLEMS[outcome], form)
    if not outcome.must_confirm:
        message = f"Your account {outcome.username} is ready."
        return page("done.html", title="Account created", message=message, link="/account", link_text="Sign in")
    if outcome.mail_problem is not None:
        message = (
            f"Your account {outcome.username} is created, but we could not send the email that confirms your address:"
            f" {outcome.mail_problem}. Sign in later: we will send it again."
        )
        return page("done.html", 503, title="Account created", message=message, link="/account", link_text="Sign in")
    lifetime = duration(fd.settings.email.verify_link_lifetime)
    message = (
        f"We sent a link to {outcome.email}. Open it within {lifetime} to confirm your address; then you can sign in"
        f" as {outcome.username}. Look in your spam folder if it does not arrive."
    )
    return page("done.html", title="Check your email", message=message)


async def signup(request: Request) -> Response:
    fd: Frontdesk = request.app.state.fd
    binding = binding_of(request, fd)
    if request.method == "GET":
        return _form(fd, binding)
    form = await checked_form(request, fd)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(_signed_up, fd, binding, form, client_ip(request))


def routes(fd: Frontdesk) -> list[Route]:
    return [Route("/signup", signup, methods=["GET", "POST"])] if fd.settings.signup.enabled else []
