"""The tables of running frontdesk as a product (issue 16): the admin API and console, alerts from the audit trail,
metrics, email to people, and self sign-up. Read by the same loader as ``sections``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from .errors import ConfigError
from .sections import Section

__all__ = ["ADMIN_ROLES", "Admin", "Alerts", "Email", "Metrics", "Signup"]

# Each role can do what the ones after it can: owner (everything, admin tokens and roles included), operator (day
# to day changes: clients, people, keys), auditor (read only).
ADMIN_ROLES = ("owner", "operator", "auditor")


@dataclass(frozen=True, slots=True)
class Admin(Section):
    """``[admin]``: the admin API under ``/admin/api/v1/`` and the console at ``/admin``."""

    from_environment: ClassVar[bool] = True
    unsigned: ClassVar[bool] = True

    api: bool = True
    console: bool = True
    # The console asks every admin for a second factor, whatever [second_factor] says for everyone else.
    console_requires_second_factor: bool = True
    # An admin token lives this many days unless created with another lifetime; 0: until revoked.
    token_days: int = 90
    # Failed admin token attempts (unknown, expired or revoked tokens) allowed per address: (count, window seconds).
    token_failures_per_ip: tuple[int, int] = (10, 600)

    def check(self) -> None:
        if not 0 <= self.token_days <= 3650:
            raise ConfigError("admin.token_days must be between 0 (until revoked) and 3650")
        count, window = self.token_failures_per_ip
        if count < 1 or window < 1:
            raise ConfigError("admin.token_failures_per_ip needs a count and a window of at least 1")


@dataclass(frozen=True, slots=True)
class Alerts(Section):
    """``[alerts]``: rules evaluated as audit events are written. Each threshold is (events, window seconds); an
    alert that is open is grouped with its repeats rather than raised again."""

    from_environment: ClassVar[bool] = True  # FRONTDESK_ALERTS_WEBHOOK_URL, FRONTDESK_ALERTS_WEBHOOK_SECRET
    unsigned: ClassVar[bool] = True

    enabled: bool = True
    # A signed POST of each new alert; empty: none. ``Frontdesk-Signature: v1=<hex>``, the HMAC-SHA256 under
    # webhook_secret of ``Frontdesk-Timestamp``, ".", and the body (admin/alert_webhook.py).
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)  # a key: kept out of every repr of the settings
    failed_signins_per_person: tuple[int, int] = (10, 600)
    failed_signins_per_ip: tuple[int, int] = (30, 600)
    failed_client_auth: tuple[int, int] = (20, 600)  # per client
    # A vault connection proxied this many times its usual hourly rate (and at least proxy_min_calls in the hour).
    proxy_rate_factor: int = 10
    proxy_min_calls: int = 200
    refresh_failures: int = 3  # consecutive failed refreshes of one vault connection
    key_rotation_days: int = 90  # the newest signing key older than this: rotation overdue

    def check(self) -> None:
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ConfigError("alerts.webhook_url must be an http(s) URL")
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise ConfigError("alerts.webhook_secret must be at least 16 characters when alerts.webhook_url is set")
        for name in ("failed_signins_per_person", "failed_signins_per_ip", "failed_client_auth"):
            count, window = getattr(self, name)
            if count < 1 or window < 1:
                raise ConfigError(f"alerts.{name} needs a count and a window of at least 1")
        for name in ("proxy_rate_factor", "refresh_failures", "key_rotation_days"):
            if getattr(self, name) < 1:
                raise ConfigError(f"alerts.{name} must be at least 1")


@dataclass(frozen=True, slots=True)
class Metrics(Section):
    """``[metrics]``: Prometheus metrics. Off the public listener by default: served on ``listen`` (host:port of a
    listener of their own) when set, and at ``/metrics`` of the public listener only with ``public = true``."""

    from_environment: ClassVar[bool] = True  # FRONTDESK_METRICS_LISTEN, FRONTDESK_METRICS_PUBLIC

    listen: str = ""  # e.g. "127.0.0.1:9464"; empty: no listener of their own
    public: bool = False

    @property
    def enabled(self) -> bool:
        """Whether metrics are collected at all: only when something serves them (nothing is measured otherwise)."""
        return bool(self.listen) or self.public

    def check(self) -> None:
        if self.listen:
            host, _, port = self.listen.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError('metrics.listen must be "host:port", e.g. "127.0.0.1:9464"')


@dataclass(frozen=True, slots=True)
class Email(Section):
    """``[email]``: mail to people through SMTP (verification, password reset, sign-up). Empty ``smtp_url``: no
    mail; the pages that would send one say so instead."""

    from_environment: ClassVar[bool] = True  # FRONTDESK_EMAIL_SMTP_URL keeps the SMTP password out of the file
    unsigned: ClassVar[bool] = True

    # smtp://user:password@host:587 (STARTTLS when the server offers it, required unless the host is loopback),
    # smtps://… (TLS from the start). Never logged: it may carry a password.
    smtp_url: str = field(default="", repr=False)  # kept out of every repr of the settings, like a key
    from_address: str = ""
    verify_link_lifetime: int = 24 * 3600
    reset_link_lifetime: int = 3600
    timeout: int = 10  # seconds for the whole SMTP conversation

    def check(self) -> None:
        if not self.smtp_url:
            return
        if urlsplit(self.smtp_url).scheme not in ("smtp", "smtps"):
            raise ConfigError("email.smtp_url must start with smtp:// or smtps://")
        if "@" not in self.from_address:
            raise ConfigError("email.from_address must be set to an address when email.smtp_url is set")
        if not 60 <= self.reset_link_lifetime <= 24 * 3600:
            raise ConfigError("email.reset_link_lifetime must be between 60 seconds and one day")
        if not 60 <= self.verify_link_lifetime <= 7 * 24 * 3600:
            raise ConfigError("email.verify_link_lifetime must be between 60 seconds and seven days")
        if not 1 <= self.timeout <= 300:
            raise ConfigError("email.timeout must be between 1 and 300 seconds")


@dataclass(frozen=True, slots=True)
class Signup(Section):
    """``[signup]``: people may create their own account (off by default). With email configured they must
    verify their address before the account can sign in."""

    enabled: bool = False
    require_verified_email: bool = True
