"""Signing in with another provider: operators add upstream OpenID Connect (or plain OAuth 2.0) providers, and
people sign in through them (``flow``; the browser's side of the trip: ``arrival``), their accounts there linked to
accounts here."""

from .flow import FED, Person, Refused, Returned, begin, come_back, confirm_link
from .jwks import ProviderKeys
from .providers import (
    Provider,
    ProviderError,
    add_provider,
    callback_url,
    find_provider,
    list_providers,
    remove_provider,
    sign_in_buttons,
)

__all__ = [
    "FED",
    "Person",
    "Provider",
    "ProviderError",
    "ProviderKeys",
    "Refused",
    "Returned",
    "add_provider",
    "begin",
    "callback_url",
    "come_back",
    "confirm_link",
    "find_provider",
    "list_providers",
    "remove_provider",
    "sign_in_buttons",
]
