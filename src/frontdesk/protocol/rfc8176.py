"""RFC 8176 Authentication Method Reference values: how the person signed in, as ``amr`` in ID tokens (OpenID
Connect Core §2), and the ``acr`` each combination earns."""

from __future__ import annotations

__all__ = ["HWK", "MFA", "OTP", "PWD", "SWK", "is_multi_factor"]

PWD = "pwd"  # a password
OTP = "otp"  # a one-time code: RFC 6238 TOTP, or a recovery code
HWK = "hwk"  # proof of possession of a hardware-secured key: a device-bound passkey
SWK = "swk"  # proof of possession of a software-secured key: a synced passkey
MFA = "mfa"  # more than one factor: a password and a code, or a passkey that verified the person


def is_multi_factor(amr: tuple[str, ...]) -> bool:
    return MFA in amr
