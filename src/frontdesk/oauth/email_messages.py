"""The words of the messages frontdesk mails to people. Each says who asked for it (the person, or an
administrator) and how long its link works, and carries no secret but that one-time link."""

from __future__ import annotations

from urllib.parse import urlsplit

from .mail import Mail

__all__ = [
    "address_changed_message",
    "duration",
    "reset_message",
    "security_notice_message",
    "site_of",
    "verify_message",
]

SIGNATURE = "This message was sent automatically by {site}; replies are not read."


def site_of(issuer: str) -> str:
    """The server's name in a sentence: the issuer's host."""
    return urlsplit(issuer).netloc or issuer


def duration(seconds: int) -> str:
    """A link's life in words: "1 hour", "30 minutes", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _by_admin(requested_by: str) -> bool:
    return requested_by != "self"


def reset_message(to: str, username: str, issuer: str, link: str, lifetime: int, requested_by: str) -> Mail:
    site = site_of(issuer)
    if _by_admin(requested_by):
        who = f"An administrator of {site} started a password reset for your account {username}."
        ignore = "If you did not expect this, tell your administrator. Your password stays as it is until you use"
        ignore += " the link."
    else:
        who = f"Someone asked to reset the password of your account {username} at {site}; we hope it was you."
        ignore = "If you did not ask for this, you can ignore this message: your password stays as it is."
    text = (
        f"Hello {username},\n\n{who}\n\n"
        f"To choose a new password, open this link within {duration(lifetime)}:\n\n{link}\n\n"
        "The link works once. Choosing a new password signs you out everywhere you are signed in, and apps you let"
        " in will ask you to sign in again.\n\n"
        f"{ignore}\n\n-- \n{SIGNATURE.format(site=site)}\n"
    )
    return Mail(to, f"Reset your password at {site}", text)


def verify_message(
    to: str, username: str, issuer: str, link: str, lifetime: int, requested_by: str, *, signup: bool = False
) -> Mail:
    site = site_of(issuer)
    if signup:
        who = f"Someone created the account {username} at {site} with this address; we hope it was you."
        after = "Your account can be used once you confirm."
    elif _by_admin(requested_by):
        who = f"An administrator of {site} asked us to check that this address belongs to the account {username}."
        after = "Nothing else changes."
    else:
        who = f"You asked us to check that this address belongs to your account {username} at {site}."
        after = "Nothing else changes."
    text = (
        f"Hello {username},\n\n{who}\n\n"
        f"To confirm that it is your address, open this link within {duration(lifetime)}:\n\n{link}\n\n"
        f"The link works once. {after}\n\n"
        "If this is not your account, ignore this message: the address will not be confirmed.\n\n"
        f"-- \n{SIGNATURE.format(site=site)}\n"
    )
    subject = f"Confirm your email address at {site}"
    return Mail(to, subject, text)


def address_changed_message(to: str, username: str, issuer: str, new_address: str) -> Mail:
    """To the old address when a person changes theirs: no link, nothing to act on unless it was not them."""
    site = site_of(issuer)
    text = (
        f"Hello {username},\n\nThe email address of your account {username} at {site} was changed on the account"
        f" page to {new_address}. Messages about the account, such as password resets, go there from now on.\n\n"
        "If you did this, there is nothing more to do. If you did not, someone may be using your account: tell the"
        f" people who run {site} at once.\n\n-- \n{SIGNATURE.format(site=site)}\n"
    )
    return Mail(to, f"Your email address at {site} was changed", text)


def security_notice_message(to: str, username: str, issuer: str, subject: str, what: str) -> Mail:
    """To a person's confirmed address when a way into their account changed (``oauth.security_notices``): no link,
    nothing to act on unless it was not them; then where to take the account back."""
    site = site_of(issuer)
    text = (
        f"Hello {username},\n\n{what}\n\n"
        "If you did this, there is nothing more to do. If you did not, someone may be using your account: ask for a"
        f" new password at {issuer}/password/forgot, which signs everyone out, and tell the people who run {site}."
        f"\n\n-- \n{SIGNATURE.format(site=site)}\n"
    )
    return Mail(to, subject.format(site=site), text)
