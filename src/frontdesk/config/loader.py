"""The one loader: defaults, then the TOML file, then ``FRONTDESK_*`` environment variables, then the command
line's overrides, into ``Settings``, read field by field from the types the dataclasses declare.

Every value is checked as it is read (a wrong type, a key that names no setting, a negative count) and the whole
is checked once assembled (``Settings.validated``): invalid configuration fails at start, loudly (DESIGN §8).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from .errors import ConfigError
from .sections import Section
from .settings import Settings

__all__ = ["load_settings", "read_section"]

S = TypeVar("S", bound=Section)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _boolean(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name}: expected a boolean, got {value!r}")


def _integer(value: Any, name: str) -> int:
    try:
        return int(value)  # a TOML or environment value: "300" reads as 300
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None


def _read(kind: object, value: Any, name: str, *, unsigned: bool = False) -> object:
    """One value, read as the type its field declares; ``name`` is the setting (or variable) an error names."""
    if kind is bool:
        return _boolean(value, name)
    if kind is int:
        number = _integer(value, name)
        if unsigned and number < 0:
            raise ConfigError(f"{name} must not be negative")
        return number
    if kind == tuple[int, int]:  # a rate limit's window
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(n, int) and n > 0 for n in value)):
            raise ConfigError(f"{name} must be [attempts, window seconds], both positive integers")
        return (value[0], value[1])
    if kind == tuple[str, ...]:  # second_factor.required_for_clients
        if not (isinstance(value, list) and all(isinstance(c, str) and c for c in value)):
            raise ConfigError(f"{name} must be a list of client ids")
        return tuple(value)
    if kind == dict[str, str]:  # [scopes]: a description each, as a string or as { description = "…" }
        table = _table(value, name)
        return {
            scope: str(spec.get("description", "")) if isinstance(spec, dict) else str(spec)
            for scope, spec in table.items()
        }
    if kind is str or kind is Path:
        return kind(value)
    raise TypeError(f"the loader cannot read {name} as {kind!r}")  # a new field type wants a reader here


def _table(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table")
    return value


def _field_types(kind: type) -> dict[str, object]:
    hints = get_type_hints(kind)
    return {f.name: hints[f.name] for f in fields(kind)}


def _section_kind(kind: object) -> type[Section] | None:
    return kind if isinstance(kind, type) and issubclass(kind, Section) else None


def read_section(kind: type[S], value: object, name: str) -> S:
    """``[name]`` of the file as ``kind``: each key read as its field's type; unknown and removed keys refused."""
    table = _table(value, name)
    types = _field_types(kind)
    values: dict[str, object] = {}
    for key, item in table.items():
        if key in kind.removed:
            raise ConfigError(f"{name}.{key} is no longer a setting: {kind.removed[key]}")
        if key not in types:
            raise ConfigError(f"unknown setting {name}.{key}")
        values[key] = _read(types[key], item, f"{name}.{key}", unsigned=kind.unsigned)
    return kind(**values)


def _from_toml(data: Mapping[str, object]) -> dict[str, object]:
    types = _field_types(Settings)
    values: dict[str, object] = {}
    for key, value in data.items():
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}")
        section = _section_kind(types[key])
        values[key] = _read(types[key], value, key) if section is None else read_section(section, value, key)
    return values


def _from_environment(env: Mapping[str, str], values: dict[str, Any]) -> None:
    """FRONTDESK_<SETTING> for the settings that allow it, FRONTDESK_<TABLE>_<SETTING> for the tables that do; an
    empty variable counts as unset."""
    types = _field_types(Settings)
    for name in Settings.from_environment:
        var = f"FRONTDESK_{name.upper()}"
        if env.get(var, "") != "":
            values[name] = _read(types[name], env[var], var)
    for name, kind in types.items():
        section = _section_kind(kind)
        if section is None or not section.from_environment:
            continue
        given = {}
        for setting, setting_kind in _field_types(section).items():
            var = f"FRONTDESK_{name.upper()}_{setting.upper()}"
            if env.get(var, "") != "":
                given[setting] = _read(setting_kind, env[var], var)
        if given:
            values[name] = replace(values.get(name, section()), **given)


def load_settings(
    config_file: str | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Settings from (lowest first) defaults, the TOML file, the environment, then explicit overrides.

    An override of a table (``server`` from ``serve``'s flags) is a dict of its settings (None for those not
    given), laid over the file's and the environment's one by one."""
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
    _from_environment(env, values)
    types = _field_types(Settings)
    for name, value in overrides.items():
        section = _section_kind(types.get(name))
        if section is not None and isinstance(value, dict):
            given = {key: item for key, item in value.items() if item is not None}
            values[name] = replace(values.get(name, section()), **given)
        elif value is not None:
            values[name] = value
    return Settings(**values).validated()
