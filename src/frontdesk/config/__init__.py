"""Configuration: a TOML file plus ``FRONTDESK_*`` environment variables, loaded once into frozen dataclasses.

Invalid configuration fails at start, loudly (DESIGN §8). Security relaxations are explicit, named and logged.

- ``sections``: each table of the file declared once, as a frozen dataclass with typed fields, defaults and bounds;
- ``settings``: ``Settings``, the whole, with the checks that span tables and the named relaxations;
- ``loader``: the one loader that reads the file and the environment into them.
"""

from __future__ import annotations

from .errors import ConfigError
from .loader import load_settings
from .sections import (
    BackchannelLogout,
    Dpop,
    Lifetimes,
    PasswordHashing,
    RateLimits,
    Registration,
    SecondFactorPolicy,
    ServerLimits,
    SigninThrottle,
)
from .settings import SIGNING_ALGS, Settings, is_loopback_host

__all__ = [
    "SIGNING_ALGS",
    "BackchannelLogout",
    "ConfigError",
    "Dpop",
    "Lifetimes",
    "PasswordHashing",
    "RateLimits",
    "Registration",
    "SecondFactorPolicy",
    "ServerLimits",
    "Settings",
    "SigninThrottle",
    "is_loopback_host",
    "load_settings",
]
