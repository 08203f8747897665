"""Who calls through a connection: the platform's backend with an API key, or an app or agent with a person's token.

Kept with each proxied call's audit event and, as compact JSON, in the connection's ``last_used_by`` (a column of 255
characters), so that the person's account page can say by which app or agent it was last used (issue 14).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_ACTORS", "Caller", "actors_of"]

MAX_STORED = 255  # vault_connections.last_used_by
# RFC 8693 §4.1 lets ``act`` nest without limit; a chain this deep is shown and stored no further.
MAX_ACTORS = 8


def actors_of(act: Any) -> tuple[str, ...]:
    """The actor chain of an ``act`` claim (RFC 8693 §4.1), the current actor first, then those it acts for: each
    nested ``act`` is a prior actor. Anything that is not an object with a string ``sub`` ends the chain."""
    chain: list[str] = []
    while isinstance(act, Mapping) and isinstance(act.get("sub"), str) and len(chain) < MAX_ACTORS:
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain)


@dataclass(frozen=True, slots=True)
class Caller:
    """An API key (its id and name), or the client holding a person's token and that token's actor chain."""

    api_key: str | None = None
    api_key_name: str | None = None
    client_id: str | None = None
    person: str | None = None
    actors: tuple[str, ...] = ()

    def stored(self) -> str:
        """The ``last_used_by`` value: JSON within the column, the deepest actors dropped first when too long."""
        if self.api_key is not None:
            return _fitted({"api_key": self.api_key, "name": self.api_key_name or ""})
        actors = list(self.actors)
        while True:
            text = json.dumps({"client_id": self.client_id, "act": actors}, separators=(",", ":"))
            if len(text) <= MAX_STORED or not actors:
                return _fitted({"client_id": self.client_id, "act": actors})
            actors.pop()

    @classmethod
    def parse(cls, text: str | None) -> Caller | None:
        """A stored ``last_used_by`` read back; None when there is none or it cannot be read."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("api_key"), str):
            return cls(api_key=data["api_key"], api_key_name=str(data.get("name") or ""))
        act = data.get("act")
        if isinstance(data.get("client_id"), str) and isinstance(act, list):
            return cls(client_id=data["client_id"], actors=tuple(a for a in act if isinstance(a, str)))
        return None

    def audit(self) -> dict[str, Any]:
        """The proxy event's detail about the caller: a person's token's actor chain (the client and the person go
        in the event's own columns); nothing for an API key, whose events are as they always were."""
        return {"act": list(self.actors)} if self.actors else {}

    @property
    def for_person(self) -> bool:
        return self.client_id is not None


def _fitted(data: dict[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"))
    if len(text) <= MAX_STORED:
        return text
    # Only an id or name near the column's size gets here: cut it, keeping the JSON whole.
    key = "client_id" if "client_id" in data else "name"
    value = str(data[key])
    while len(text) > MAX_STORED and value:
        value = value[:-8]
        text = json.dumps({**data, key: value + "…"}, separators=(",", ":"))
    return text
