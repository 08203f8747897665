"""The tables of the configuration file, each declared once: a frozen dataclass whose typed fields and defaults are
the settings, read by the one loader (config/loader.py), and whose ``check`` holds the table's own bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import ClassVar

from .errors import ConfigError

__all__ = [
    "ARGON2ID_FLOORS",
    "REGISTRATION_MODES",
    "SECOND_FACTOR_REQUIRED",
    "BackchannelLogout",
    "Dpop",
    "Lifetimes",
    "PasswordHashing",
    "RateLimits",
    "Registration",
    "SecondFactorPolicy",
    "Section",
    "ServerLimits",
    "SigninThrottle",
]


class Section:
    """A table of the file (``[server]``, ``[passwords]`` …), named by its field of ``Settings``. The loader reads
    each key by the type of the field it names and refuses a key that names none."""

    __slots__ = ()
    # Each setting may also come from FRONTDESK_<TABLE>_<SETTING>, over the file's value.
    from_environment: ClassVar[bool] = False
    # Integers below zero are refused as the file is read ("must not be negative"); check() bounds the rest.
    unsigned: ClassVar[bool] = False
    # Settings that are gone, each with where it went: a file still carrying one is refused and told so.
    removed: ClassVar[Mapping[str, str]] = {}

    def check(self) -> None:
        """Refuse values out of bounds, with a message naming the setting (DESIGN §8)."""


@dataclass(frozen=True, slots=True)
class Lifetimes(Section):
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

    def check(self) -> None:
        if self.code > 600:
            raise ConfigError("lifetimes.code must be at most 600 seconds (OAuth 2.1 §4.1.2)")
        if self.session_idle > self.session:
            raise ConfigError("lifetimes.session_idle must not exceed lifetimes.session")


@dataclass(frozen=True, slots=True)
class RateLimits(Section):
    """(attempts, window seconds) per limit, counted in the database so they hold across processes and hosts.

    Only failures are counted where a legitimate caller rarely fails (client authentication, user code entry, second
    factor codes): a busy client that authenticates correctly is never slowed, while guessing stops within a handful
    of tries. The authorization endpoint counts every request per address, with room for a busy office behind NAT.
    Wrong passwords are not here: ``SigninThrottle`` answers them with growing delays instead.
    """

    # Fixed windows on sign-in attempts, replaced by ``[signin_throttle]``. A file written for them is refused like
    # any unknown setting, but told where the setting went.
    removed: ClassVar[Mapping[str, str]] = dict.fromkeys(
        ("signin_per_account_and_ip", "signin_per_account", "signin_per_ip"),
        "failed sign-ins are throttled by [signin_throttle]",
    )

    enabled: bool = True
    client_auth_per_client_and_ip: tuple[int, int] = (10, 60)
    client_auth_per_ip: tuple[int, int] = (100, 60)
    user_code_per_ip: tuple[int, int] = (10, 900)
    authorize_per_ip: tuple[int, int] = (1200, 60)
    second_factor_per_account: tuple[int, int] = (5, 900)  # wrong one-time or recovery codes
    # Dynamic registrations (RFC 7591) per address: every one counts, each is a row someone else must purge.
    registration_per_ip: tuple[int, int] = (20, 3600)
    # Mail to people (oauth/email_links.py, oauth/signup.py): every message sent counts, so nobody can use frontdesk
    # to flood an inbox, and sign-ups per address stay few.
    email_per_person: tuple[int, int] = (5, 3600)
    email_per_ip: tuple[int, int] = (20, 3600)
    signup_per_ip: tuple[int, int] = (10, 3600)


SECOND_FACTOR_REQUIRED = ("none", "all")


@dataclass(frozen=True, slots=True)
class SecondFactorPolicy(Section):
    """Who must use a second factor at sign-in. Everyone who enrolled one always does; this adds the rest, who
    are asked to enrol before they continue."""

    required: str = "none"  # "none" | "all"
    required_for_clients: tuple[str, ...] = ()
    totp_issuer: str = ""  # the name authenticator apps show; the issuer's host when empty

    def check(self) -> None:
        if self.required not in SECOND_FACTOR_REQUIRED:
            raise ConfigError(f"second_factor.required must be one of {', '.join(SECOND_FACTOR_REQUIRED)}")


@dataclass(frozen=True, slots=True)
class SigninThrottle(Section):
    """Progressive delays after failed sign-ins, shared by every process (the policy:
    ``frontdesk.oauth.signin_throttle``)."""

    unsigned: ClassVar[bool] = True

    enabled: bool = True
    free_per_account_and_ip: int = 5  # failures one address may make for one account before it must wait
    free_per_ip: int = 20  # failures one address may make across all accounts before it must wait
    # Failures for one account from anywhere that mark it as under attack; each address then gets this many free.
    account_under_attack: int = 10
    free_under_attack: int = 1
    base_delay: int = 15  # seconds: the first wait; each further failure doubles it
    max_delay: int = 900
    forget_after: int = 900  # failures are forgotten once an address (or account) stays quiet this long

    def check(self) -> None:
        if not 1 <= self.base_delay <= self.max_delay:
            raise ConfigError("signin_throttle needs 1 <= base_delay <= max_delay")


@dataclass(frozen=True, slots=True)
class BackchannelLogout(Section):
    """OpenID Connect Back-Channel Logout 1.0: how logout tokens are delivered from the outbox."""

    unsigned: ClassVar[bool] = True

    token_lifetime: int = 120  # a logout token's exp, counted from each delivery attempt
    timeout: int = 5  # seconds a client's back-channel logout URI has to answer
    max_attempts: int = 8  # then the delivery is given up (and audited)
    first_retry: int = 10  # seconds after the first failure; doubled after each further one
    max_retry: int = 3600
    poll: int = 5  # seconds between looks at the outbox (a sign-out wakes it at once in its own process)

    def check(self) -> None:
        if min(self.max_attempts, self.timeout, self.poll, self.first_retry, self.token_lifetime) < 1:
            raise ConfigError("backchannel_logout settings must be at least 1")


@dataclass(frozen=True, slots=True)
class ServerLimits(Section):
    """``[server]``: how ``frontdesk serve`` treats slow, stalled and surplus connections, and how long it waits
    for requests still running once told to stop. Counted per worker process; every value is at least 1."""

    from_environment: ClassVar[bool] = True  # FRONTDESK_SERVER_HEADER_TIMEOUT and so on
    unsigned: ClassVar[bool] = True

    header_timeout: int = 10  # seconds from a request's first byte (or a new connection) to its last header line
    body_timeout: int = 60  # seconds from the header block to the request body's last byte
    # Seconds an idle keep-alive connection stays open after a response (uvicorn's default). Behind a load balancer
    # that reuses connections, set it above the balancer's own idle timeout, or the balancer may send a request on
    # a connection this end is closing.
    keepalive_timeout: int = 5
    max_connections: int = 1000  # open connections a worker keeps; more are answered 503 and closed
    shutdown_timeout: int = 10  # seconds after SIGTERM before requests still running are cancelled

    def check(self) -> None:
        for setting in fields(self):
            if getattr(self, setting.name) < 1:
                raise ConfigError(f"server.{setting.name} must be at least 1")


# OWASP's Password Storage Cheat Sheet: argon2id minimums, each (memory KiB, iterations) at parallelism 1 an equal
# trade-off. A cost that reaches none of them is refused unless the named relaxation is set (config/settings.py).
ARGON2ID_FLOORS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


@dataclass(frozen=True, slots=True)
class PasswordHashing(Section):
    """``[passwords]``: the argon2id cost of each new password hash (RFC 9106). A hash carries the cost it was made
    with, so a change applies to passwords set from then on and every stored hash still verifies. The defaults are
    argon2-cffi's, RFC 9106's second recommended option."""

    from_environment: ClassVar[bool] = True  # FRONTDESK_PASSWORDS_TIME_COST, _MEMORY_COST and _PARALLELISM
    unsigned: ClassVar[bool] = True

    time_cost: int = 3  # iterations
    memory_cost: int = 65536  # KiB
    parallelism: int = 4

    def check(self) -> None:
        # argon2's own limits (RFC 9106 §3.1: at least 8 KiB a lane), which no relaxation lifts.
        if self.time_cost < 1 or self.parallelism < 1 or self.memory_cost < 8 * self.parallelism:
            raise ConfigError("passwords needs time_cost >= 1, parallelism >= 1 and memory_cost >= 8 * parallelism")

    def below_floor(self) -> bool:
        return not any(self.memory_cost >= m and self.time_cost >= t for m, t in ARGON2ID_FLOORS)


REGISTRATION_MODES = ("open", "token", "closed")


@dataclass(frozen=True, slots=True)
class Registration(Section):
    """Clients that register themselves (RFC 7591/7592) or are named by a client ID metadata document.

    ``open``: anyone may register a client that can do nothing without a person's consent (authorization code,
    refresh token, device grant; unrestricted scopes); more needs an initial access token. ``token``: every
    registration needs one. ``closed``: no registration endpoint (metadata documents are governed by
    ``metadata_documents``)."""

    unsigned: ClassVar[bool] = True

    mode: str = "open"
    # draft-ietf-oauth-client-id-metadata-document: an https client_id naming a JSON document this server fetches.
    metadata_documents: bool = True
    # Development and tests only: fetch metadata documents from hosts that resolve to loopback, private,
    # link-local or multicast addresses (a server-side request forgery guard otherwise).
    allow_private_metadata_hosts: bool = False
    metadata_max_bytes: int = 5 * 1024
    metadata_timeout: int = 5  # seconds
    # Cache-Control max-age is kept within these bounds; a failing refetch keeps the stored copy this long.
    metadata_min_cache: int = 300
    metadata_max_cache: int = 24 * 3600
    metadata_stale_for: int = 24 * 3600
    # Limits on what one registration may hold.
    max_redirect_uris: int = 10
    max_uri_length: int = 2000
    max_name_length: int = 200
    # `frontdesk purge` removes self-registered clients never used for this long.
    unused_client_days: int = 30

    def check(self) -> None:
        if self.mode not in REGISTRATION_MODES:
            raise ConfigError(f"registration.mode must be one of {', '.join(REGISTRATION_MODES)}")
        if self.metadata_min_cache > self.metadata_max_cache:
            raise ConfigError("registration.metadata_min_cache must not exceed registration.metadata_max_cache")
        if not 1 <= self.metadata_timeout <= 30:
            raise ConfigError("registration.metadata_timeout must be between 1 and 30 seconds")


@dataclass(frozen=True, slots=True)
class Dpop(Section):
    """``[dpop]``: DPoP proofs (RFC 9449) at the token endpoint and at this server's resources."""

    unsigned: ClassVar[bool] = True

    # §8: every proof must carry a nonce this server issued (answered with use_dpop_nonce until it does). Off by
    # default: a nonce costs a client a round trip, and the replay cache already refuses a proof seen before.
    require_nonce: bool = False
    # §8: a nonce is an HMAC over a time step of this many seconds under a key derived from the master key, so every
    # process issues and accepts the same ones; one stays good for one to two steps.
    nonce_lifetime: int = 300
    # §4.3 item 11, §11.1: a proof's iat may be this many seconds from the server's clock either way; its jti is
    # remembered that long.
    proof_window: int = 60

    def check(self) -> None:
        if not 10 <= self.proof_window <= 600:
            raise ConfigError("dpop.proof_window must be between 10 and 600 seconds")
        if not 30 <= self.nonce_lifetime <= 86400:
            raise ConfigError("dpop.nonce_lifetime must be between 30 seconds and one day")
