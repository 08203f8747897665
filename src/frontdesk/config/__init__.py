"""Configuration: a TOML file plus ``FRONTDESK_*`` environment variables, loaded once into frozen dataclasses.

Invalid configuration fails at start, loudly (DESIGN §8). Security relaxations are explicit, named and logged.

- ``sections`` and ``operations`` (the admin, alerts, metrics, email and sign-up tables): each table of the file
  declared once, as a frozen dataclass with typed fields, defaults and bounds;
- ``settings``: ``Settings``, the whole, with the checks that span tables and the named relaxations;
- ``loader``: the one loader that reads the file and the environment into them.
"""

from __future__ import annotations

from .errors import ConfigError
from .loader import load_settings
from .operations import ADMIN_ROLES, Admin, Alerts, Email, Metrics, Signup
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
from .settings import LOG_FORMATS, SIGNING_ALGS, Settings, is_loopback_host

__all__ = [
    "ADMIN_ROLES",
    "LOG_FORMATS",
    "SIGNING_ALGS",
    "Admin",
    "Alerts",
    "BackchannelLogout",
    "ConfigError",
    "Dpop",
    "Email",
    "Lifetimes",
    "Metrics",
    "PasswordHashing",
    "RateLimits",
    "Registration",
    "SecondFactorPolicy",
    "ServerLimits",
    "Settings",
    "SigninThrottle",
    "Signup",
    "is_loopback_host",
    "load_settings",
]
