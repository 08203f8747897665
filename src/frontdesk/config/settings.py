"""``Settings``: the whole configuration, and the checks that span it, among them the named security relaxations.

A relaxation lets development or a test suite past one security check; it is a setting of its own, named for what
it gives up, and logged as a warning at every start (DESIGN §8).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from .errors import ConfigError
from .operations import Admin, Alerts, Email, Metrics, Signup
from .sections import (
    ARGON2ID_FLOORS,
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

__all__ = ["SIGNING_ALGS", "Settings", "is_loopback_host"]

log = logging.getLogger("frontdesk.config")

SIGNING_ALGS = ("ES256", "RS256", "EdDSA")


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOG_FORMATS = ("auto", "json", "text")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting: the file's top-level keys, then its tables (each a ``Section``), then ``[scopes]``."""

    # The settings that may also come from FRONTDESK_<SETTING>, over the file's value.
    from_environment: ClassVar[tuple[str, ...]] = (
        "home",
        "database_url",
        "database_pool_size",
        "issuer",
        "log_level",
        "log_format",
        "access_log",
        "allow_insecure_issuer",
        "insecure_fast_password_hashing",
        "access_token_alg",
        "master_key",
        "master_key_file",
        "vault_keys",
        "vault_key_file",
        "vault_providers_dir",
        "vault_webhook_url",
        "vault_webhook_secret",
    )

    home: Path = Path("var")
    database_url: str = ""
    # PostgreSQL connections each process keeps (and one more for its cache listener): workers x (pool + 1), for
    # every host, must stay below the server's max_connections.
    database_pool_size: int = 20
    issuer: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    # "auto": human-readable lines on a terminal, JSON lines otherwise; "json" or "text" to choose.
    log_format: str = "auto"
    # One line per request at INFO (uvicorn's access line, with the request's audit event on it); see README.
    access_log: bool = True
    # Named relaxation: allow a plain-http issuer that is not loopback (development only; logged at start).
    allow_insecure_issuer: bool = False
    # Named relaxation: allow [passwords] costs below OWASP's floor (test suites only; logged at start).
    insecure_fast_password_hashing: bool = False
    access_token_alg: str = "ES256"
    id_token_alg: str = "RS256"
    max_body_bytes: int = 64 * 1024
    max_proxy_body: int = 10 * 1024 * 1024
    lifetimes: Lifetimes = field(default_factory=Lifetimes)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    second_factor: SecondFactorPolicy = field(default_factory=SecondFactorPolicy)
    signin_throttle: SigninThrottle = field(default_factory=SigninThrottle)
    backchannel_logout: BackchannelLogout = field(default_factory=BackchannelLogout)
    server: ServerLimits = field(default_factory=ServerLimits)
    passwords: PasswordHashing = field(default_factory=PasswordHashing)
    registration: Registration = field(default_factory=Registration)
    dpop: Dpop = field(default_factory=Dpop)
    admin: Admin = field(default_factory=Admin)
    alerts: Alerts = field(default_factory=Alerts)
    metrics: Metrics = field(default_factory=Metrics)
    email: Email = field(default_factory=Email)
    signup: Signup = field(default_factory=Signup)
    scopes: dict[str, str] = field(default_factory=dict)  # scope name -> the description consent pages show
    master_key: str = ""
    master_key_file: str = ""
    # The vault (DESIGN §6): its own keys, apart from the master key; operator provider files; lifecycle webhook.
    vault_keys: str = ""
    vault_key_file: str = ""
    vault_providers_dir: str = ""
    vault_webhook_url: str = ""
    vault_webhook_secret: str = ""

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'frontdesk.db').resolve()}"

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    def validated(self) -> Settings:
        self._check_issuer()
        for name in ("access_token_alg", "id_token_alg"):
            if getattr(self, name) not in SIGNING_ALGS:
                raise ConfigError(f"{name} must be one of {', '.join(SIGNING_ALGS)}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
        self.lifetimes.check()
        if not 1 <= self.database_pool_size <= 1000:
            raise ConfigError("database_pool_size must be between 1 and 1000")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        for section in (
            self.second_factor,
            self.signin_throttle,
            self.backchannel_logout,
            self.server,
            self.registration,
            self.dpop,
            self.alerts,
            self.metrics,
            self.email,
        ):
            section.check()
        self._check_password_hashing()
        if self.registration.allow_private_metadata_hosts:
            log.warning(
                "security relaxation: client ID metadata documents may be fetched from loopback and private "
                "addresses (registration.allow_private_metadata_hosts); for development and tests only"
            )
        return self

    def _check_issuer(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"issuer {self.issuer!r} must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ConfigError("issuer must not carry a query or fragment (RFC 8414 §2)")
        if self.issuer.endswith("/"):
            raise ConfigError("issuer must not end with '/'")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            if not self.allow_insecure_issuer:
                raise ConfigError(
                    f"issuer {self.issuer!r} is plain http on a non-loopback host; use https, or set "
                    "FRONTDESK_ALLOW_INSECURE_ISSUER=1 for development"
                )
            log.warning("security relaxation: plain-http issuer %s on a non-loopback host", self.issuer)

    def _check_password_hashing(self) -> None:
        cost = self.passwords
        cost.check()
        if not cost.below_floor():
            return
        if not self.insecure_fast_password_hashing:
            floors = ", ".join(f"memory_cost {m} with time_cost {t}" for m, t in ARGON2ID_FLOORS)
            raise ConfigError(
                f"passwords: memory_cost {cost.memory_cost} with time_cost {cost.time_cost} is below OWASP's argon2id "
                f"minimum (at least one of: {floors}); set FRONTDESK_INSECURE_FAST_PASSWORD_HASHING=1 for tests only"
            )
        log.warning(
            "security relaxation: password hashing below OWASP's argon2id minimum (time_cost %d, memory_cost %d KiB, "
            "parallelism %d); for tests only",
            cost.time_cost,
            cost.memory_cost,
            cost.parallelism,
        )
