"""Configuration: a TOML file plus ``FRONTDESK_*`` environment variables, loaded once into frozen dataclasses.

Invalid configuration fails at start, loudly (DESIGN §8). Security relaxations are explicit, named and logged.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BackchannelLogout",
    "ConfigError",
    "Lifetimes",
    "PasswordHashing",
    "RateLimits",
    "SecondFactorPolicy",
    "ServerLimits",
    "Settings",
    "SigninThrottle",
    "is_loopback_host",
    "load_settings",
]

log = logging.getLogger("frontdesk.config")

SIGNING_ALGS = ("ES256", "RS256", "EdDSA")


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Seconds each artefact lives."""

    code: int = 60
    access_token: int = 600
    id_token: int = 600
    refresh_token: int = 30 * 24 * 3600
    refresh_idle: int = 14 * 24 * 3600
    # RFC 9700 §4.14.2 allows a short window for benign concurrent refreshes; 0 means reuse is always theft.
    refresh_reuse_grace: int = 0
    session: int = 8 * 3600  # absolute: a session ends this long after sign-in, however busy
    session_idle: int = 2 * 3600  # a session unused this long ends (last use is recorded at most once a minute)
    # Adding a passkey or changing the second factor on the account page needs a sign-in at most this old.
    recent_sign_in: int = 600
    passkey_challenge: int = 300  # a WebAuthn challenge: single use, and only this long
    interaction: int = 600
    device_code: int = 600
    device_interval: int = 5
    # Longest a client assertion may live: authlib, for one, signs for an hour by default. Replays are refused for
    # the whole of that life, since each jti is kept until its assertion expires.
    client_assertion_max: int = 3600
    # A vault connect link: long enough to sign in at the provider, short enough that a forwarded link goes stale.
    connect_session: int = 600


@dataclass(frozen=True, slots=True)
class RateLimits:
    """(attempts, window seconds) per limit, counted in the database so they hold across processes and hosts.

    Only failures are counted where a legitimate caller rarely fails (client authentication, user code entry, second
    factor codes): a busy client that authenticates correctly is never slowed, while guessing stops within a handful
    of tries. The authorization endpoint counts every request per address, with room for a busy office behind NAT.
    Wrong passwords are not here: ``SigninThrottle`` answers them with growing delays instead.
    """

    enabled: bool = True
    client_auth_per_client_and_ip: tuple[int, int] = (10, 60)
    client_auth_per_ip: tuple[int, int] = (100, 60)
    user_code_per_ip: tuple[int, int] = (10, 900)
    authorize_per_ip: tuple[int, int] = (1200, 60)
    second_factor_per_account: tuple[int, int] = (5, 900)  # wrong one-time or recovery codes


SECOND_FACTOR_REQUIRED = ("none", "all")


@dataclass(frozen=True, slots=True)
class SecondFactorPolicy:
    """Who must use a second factor at sign-in. Everyone who enrolled one always does; this adds the rest, who
    are asked to enrol before they continue."""

    required: str = "none"  # "none" | "all"
    required_for_clients: tuple[str, ...] = ()
    totp_issuer: str = ""  # the name authenticator apps show; the issuer's host when empty


@dataclass(frozen=True, slots=True)
class SigninThrottle:
    """Progressive delays after failed sign-ins, shared by every process (the policy:
    ``frontdesk.oauth.signin_throttle``)."""

    enabled: bool = True
    free_per_account_and_ip: int = 5  # failures one address may make for one account before it must wait
    free_per_ip: int = 20  # failures one address may make across all accounts before it must wait
    # Failures for one account from anywhere that mark it as under attack; each address then gets this many free.
    account_under_attack: int = 10
    free_under_attack: int = 1
    base_delay: int = 15  # seconds: the first wait; each further failure doubles it
    max_delay: int = 900
    forget_after: int = 900  # failures are forgotten once an address (or account) stays quiet this long


@dataclass(frozen=True, slots=True)
class BackchannelLogout:
    """OpenID Connect Back-Channel Logout 1.0: how logout tokens are delivered from the outbox."""

    token_lifetime: int = 120  # a logout token's exp, counted from each delivery attempt
    timeout: int = 5  # seconds a client's back-channel logout URI has to answer
    max_attempts: int = 8  # then the delivery is given up (and audited)
    first_retry: int = 10  # seconds after the first failure; doubled after each further one
    max_retry: int = 3600
    poll: int = 5  # seconds between looks at the outbox (a sign-out wakes it at once in its own process)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """``[server]``: how ``frontdesk serve`` treats slow, stalled and surplus connections, and how long it waits
    for requests still running once told to stop. Counted per worker process; every value is at least 1."""

    header_timeout: int = 10  # seconds from a request's first byte (or a new connection) to its last header line
    body_timeout: int = 60  # seconds from the header block to the request body's last byte
    max_connections: int = 1000  # open connections a worker keeps; more are answered 503 and closed
    shutdown_timeout: int = 10  # seconds after SIGTERM before requests still running are cancelled


# OWASP's Password Storage Cheat Sheet: argon2id minimums, each (memory KiB, iterations) at parallelism 1 an equal
# trade-off. A cost that reaches none of them is refused unless the named relaxation is set.
ARGON2ID_FLOORS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


@dataclass(frozen=True, slots=True)
class PasswordHashing:
    """``[passwords]``: the argon2id cost of each new password hash (RFC 9106). A hash carries the cost it was made
    with, so a change applies to passwords set from then on and every stored hash still verifies. The defaults are
    argon2-cffi's, RFC 9106's second recommended option."""

    time_cost: int = 3  # iterations
    memory_cost: int = 65536  # KiB
    parallelism: int = 4

    def below_floor(self) -> bool:
        return not any(self.memory_cost >= m and self.time_cost >= t for m, t in ARGON2ID_FLOORS)


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = Path("var")
    database_url: str = ""
    issuer: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
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
    scopes: dict[str, str] = field(default_factory=dict)
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
        for name in ("access_token_alg", "id_token_alg"):
            if getattr(self, name) not in SIGNING_ALGS:
                raise ConfigError(f"{name} must be one of {', '.join(SIGNING_ALGS)}")
        if self.lifetimes.code > 600:
            raise ConfigError("lifetimes.code must be at most 600 seconds (OAuth 2.1 §4.1.2)")
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if self.second_factor.required not in SECOND_FACTOR_REQUIRED:
            raise ConfigError(f"second_factor.required must be one of {', '.join(SECOND_FACTOR_REQUIRED)}")
        if self.lifetimes.session_idle > self.lifetimes.session:
            raise ConfigError("lifetimes.session_idle must not exceed lifetimes.session")
        throttle, bcl = self.signin_throttle, self.backchannel_logout
        if not 1 <= throttle.base_delay <= throttle.max_delay:
            raise ConfigError("signin_throttle needs 1 <= base_delay <= max_delay")
        if min(bcl.max_attempts, bcl.timeout, bcl.poll, bcl.first_retry, bcl.token_lifetime) < 1:
            raise ConfigError("backchannel_logout settings must be at least 1")
        for name in ServerLimits.__dataclass_fields__:
            if getattr(self.server, name) < 1:
                raise ConfigError(f"server.{name} must be at least 1")
        self._check_password_hashing()
        return self

    def _check_password_hashing(self) -> None:
        cost = self.passwords
        if cost.time_cost < 1 or cost.parallelism < 1 or cost.memory_cost < 8 * cost.parallelism:
            raise ConfigError("passwords needs time_cost >= 1, parallelism >= 1 and memory_cost >= 8 * parallelism")
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


_ENV_FIELDS: dict[str, tuple[str, type]] = {
    "FRONTDESK_HOME": ("home", Path),
    "FRONTDESK_DATABASE_URL": ("database_url", str),
    "FRONTDESK_ISSUER": ("issuer", str),
    "FRONTDESK_LOG_LEVEL": ("log_level", str),
    "FRONTDESK_ALLOW_INSECURE_ISSUER": ("allow_insecure_issuer", bool),
    "FRONTDESK_INSECURE_FAST_PASSWORD_HASHING": ("insecure_fast_password_hashing", bool),
    "FRONTDESK_ACCESS_TOKEN_ALG": ("access_token_alg", str),
    "FRONTDESK_MASTER_KEY": ("master_key", str),
    "FRONTDESK_MASTER_KEY_FILE": ("master_key_file", str),
    "FRONTDESK_VAULT_KEYS": ("vault_keys", str),
    "FRONTDESK_VAULT_KEY_FILE": ("vault_key_file", str),
    "FRONTDESK_VAULT_PROVIDERS_DIR": ("vault_providers_dir", str),
    "FRONTDESK_VAULT_WEBHOOK_URL": ("vault_webhook_url", str),
    "FRONTDESK_VAULT_WEBHOOK_SECRET": ("vault_webhook_secret", str),
}
# ``[server]`` from the environment: FRONTDESK_SERVER_HEADER_TIMEOUT and so on, one variable a setting.
_SERVER_ENV = {f"FRONTDESK_SERVER_{name.upper()}": name for name in ServerLimits.__dataclass_fields__}
# ``[passwords]`` likewise: FRONTDESK_PASSWORDS_TIME_COST, _MEMORY_COST and _PARALLELISM.
_PASSWORDS_ENV = {f"FRONTDESK_PASSWORDS_{name.upper()}": name for name in PasswordHashing.__dataclass_fields__}


def _coerce(value: Any, kind: type, name: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}: expected a boolean, got {value!r}")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    return kind(value)


# Fixed windows on sign-in attempts, replaced by ``[signin_throttle]``. A file written for them is refused like any
# unknown setting, but told where the setting went.
_REMOVED_RATE_LIMITS = ("signin_per_account_and_ip", "signin_per_account", "signin_per_ip")


def _rate_limits(value: dict[str, Any]) -> RateLimits:
    limits: dict[str, Any] = {}
    for name, spec in value.items():
        if name in _REMOVED_RATE_LIMITS:
            raise ConfigError(
                f"rate_limits.{name} is no longer a setting: failed sign-ins are throttled by [signin_throttle]"
            )
        if name not in RateLimits.__dataclass_fields__:
            raise ConfigError(f"unknown setting rate_limits.{name}")
        if name == "enabled":
            limits[name] = _coerce(spec, bool, "rate_limits.enabled")
            continue
        if not (isinstance(spec, list) and len(spec) == 2 and all(isinstance(n, int) and n > 0 for n in spec)):
            raise ConfigError(f"rate_limits.{name} must be [attempts, window seconds], both positive integers")
        limits[name] = (spec[0], spec[1])
    return RateLimits(**limits)


def _second_factor(value: dict[str, Any]) -> SecondFactorPolicy:
    unknown = set(value) - set(SecondFactorPolicy.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown setting second_factor.{sorted(unknown)[0]}")
    clients = value.get("required_for_clients", [])
    if not (isinstance(clients, list) and all(isinstance(c, str) and c for c in clients)):
        raise ConfigError("second_factor.required_for_clients must be a list of client ids")
    return SecondFactorPolicy(
        required=str(value.get("required", "none")),
        required_for_clients=tuple(clients),
        totp_issuer=str(value.get("totp_issuer", "")),
    )


def _section(name: str, kind: Any, value: Any) -> Any:
    """A table of plain booleans and non-negative integers, such as ``[signin_throttle]``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table")
    fields = kind.__dataclass_fields__
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {name}.{key}")
        if fields[key].type == "bool":
            out[key] = _coerce(item, bool, f"{name}.{key}")
            continue
        number = _coerce(item, int, f"{name}.{key}")
        if number < 0:
            raise ConfigError(f"{name}.{key} must not be negative")
        out[key] = number
    return kind(**out)


def _from_toml(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    structured = (
        "lifetimes",
        "scopes",
        "rate_limits",
        "second_factor",
        "signin_throttle",
        "backchannel_logout",
        "server",
        "passwords",
    )
    plain = {f: t for f, t in Settings.__annotations__.items() if f not in structured}
    for key, value in data.items():
        if key == "lifetimes":
            lt = {}
            for lk, lv in value.items():
                if lk not in Lifetimes.__dataclass_fields__:
                    raise ConfigError(f"unknown setting lifetimes.{lk}")
                lt[lk] = _coerce(lv, int, f"lifetimes.{lk}")
            out["lifetimes"] = Lifetimes(**lt)
        elif key == "rate_limits":
            out["rate_limits"] = _rate_limits(value)
        elif key == "second_factor":
            out["second_factor"] = _second_factor(value)
        elif key == "signin_throttle":
            out["signin_throttle"] = _section(key, SigninThrottle, value)
        elif key == "backchannel_logout":
            out["backchannel_logout"] = _section(key, BackchannelLogout, value)
        elif key == "server":
            out["server"] = _section(key, ServerLimits, value)
        elif key == "passwords":
            out["passwords"] = _section(key, PasswordHashing, value)
        elif key == "scopes":
            out["scopes"] = {
                name: str(spec.get("description", "")) if isinstance(spec, dict) else str(spec)
                for name, spec in value.items()
            }
        elif key in plain:
            kind = {
                "home": Path,
                "port": int,
                "workers": int,
                "allow_insecure_issuer": bool,
                "insecure_fast_password_hashing": bool,
                "max_body_bytes": int,
                "max_proxy_body": int,
            }.get(key, str)
            out[key] = _coerce(value, kind, key)
        else:
            raise ConfigError(f"unknown setting {key!r}")
    return out


def load_settings(config_file: str | None = None, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from (lowest first) defaults, the TOML file, the environment, then explicit overrides.

    ``server`` among the overrides is a dict of ``[server]`` settings (None for those not given), laid over the
    file's and the environment's one by one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("FRONTDESK_CONFIG")
    if path:
        try:
            values.update(_from_toml(tomllib.loads(Path(path).read_text())))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    for var, (name, kind) in _ENV_FIELDS.items():
        if var in env and env[var] != "":
            values[name] = _coerce(env[var], kind, var)
    server = {name: _coerce(env[var], int, var) for var, name in _SERVER_ENV.items() if env.get(var, "") != ""}
    server.update({k: v for k, v in (overrides.pop("server", None) or {}).items() if v is not None})
    if server:
        values["server"] = replace(values.get("server", ServerLimits()), **server)
    passwords = {name: _coerce(env[var], int, var) for var, name in _PASSWORDS_ENV.items() if env.get(var, "") != ""}
    if passwords:
        values["passwords"] = replace(values.get("passwords", PasswordHashing()), **passwords)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("lifetimes"), dict):
        values["lifetimes"] = replace(Lifetimes(), **values["lifetimes"])
    return Settings(**values).validated()
