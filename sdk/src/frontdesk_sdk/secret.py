"""The platform's vault API key, held so that it never reaches a log or a traceback.

The SDK's own small wrapper, in the manner of the server's ``Secret``: a platform's backend installs the SDK without
the server (DESIGN §2, kits), so it cannot borrow the server's type.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Secret"]


@dataclass(frozen=True, slots=True, repr=False)
class Secret:
    """A value that must never reach a log or a traceback: its repr is masked."""

    value: str

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__
