"""Strict, typed settings for the long-running services (edge, sync agent, cloud, ingest).

A settings class is a frozen dataclass of sections; each field has a default and a line of
help in its metadata. Loading refuses unknown keys and wrong types with a message that names
the key, and any key can be overridden from the environment as ``CANGYUN_<SECTION>_<KEY>``
so secrets need not live in files.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
ENV_PREFIX = "CANGYUN_"


class SettingsError(ValueError):
    """A settings file or environment variable that cannot be used; the message says which."""


def setting(default: Any, help: str) -> Any:  # noqa: A002 - "help" reads best at call sites
    """Declare a settings field with its default and one line of help."""
    return dataclasses.field(default=default, metadata={"help": help})


def load_settings(cls: type[T], path: str | Path | None, *, env: dict[str, str] | None = None) -> T:
    """Load ``cls`` from a TOML file (optional), then apply ``CANGYUN_<SECTION>_<KEY>``."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise SettingsError(f"settings file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
    environ = os.environ if env is None else env
    return _build(cls, data, (), environ)


def dump_settings(settings: Any) -> str:
    """Render settings as TOML (sections of scalars), skipping values equal to None."""
    lines: list[str] = []
    for section in dataclasses.fields(settings):
        value = getattr(settings, section.name)
        lines.append(f"[{section.name}]")
        for item in dataclasses.fields(value):
            item_value = getattr(value, item.name)
            if item_value is None:
                continue
            help_text = item.metadata.get("help")
            if help_text:
                lines.append(f"# {help_text}")
            lines.append(f"{item.name} = {_toml_scalar(item_value)}")
        lines.append("")
    return "\n".join(lines)


def describe_settings(cls: type) -> list[tuple[str, Any, str]]:
    """(key, default, help) of every setting, for docs and ``--help`` texts."""
    rows = []
    hints = get_type_hints(cls)
    for section in dataclasses.fields(cls):
        section_cls = hints[section.name]
        for item in dataclasses.fields(section_cls):
            rows.append(
                (f"{section.name}.{item.name}", item.default, item.metadata.get("help", ""))
            )
    return rows


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _build(cls: type, data: Any, where: tuple[str, ...], environ: Any) -> Any:
    if not isinstance(data, dict):
        raise SettingsError(f"[{'.'.join(where)}] must be a table")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        place = ".".join((*where, unknown[0]))
        raise SettingsError(f"unknown setting {place!r}; known here: {', '.join(sorted(names))}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        key = (*where, f.name)
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, data.get(f.name, {}), key, environ)
            continue
        env_name = ENV_PREFIX + "_".join(key).upper()
        if env_name in environ:
            values[f.name] = _coerce(environ[env_name], hint, env_name, from_env=True)
        elif f.name in data:
            values[f.name] = _coerce(data[f.name], hint, ".".join(key), from_env=False)
    try:
        return cls(**values)
    except TypeError as exc:  # a field without default missing from the file
        raise SettingsError(f"[{'.'.join(where) or 'settings'}] {exc}") from exc


def _coerce(value: Any, hint: Any, name: str, *, from_env: bool) -> Any:
    optional = False
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        optional = len(args) < len(get_args(hint))
        hint = args[0]
    if optional and (value is None or (from_env and value == "")):
        return None
    try:
        if hint is bool:
            if from_env:
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes")
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if hint is int:
            if isinstance(value, bool) or (not from_env and not isinstance(value, int)):
                raise ValueError(value)
            return int(value)
        if hint is float:
            if isinstance(value, bool) or (not from_env and not isinstance(value, int | float)):
                raise ValueError(value)
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
        if hint is Path:
            if not isinstance(value, str):
                raise ValueError(value)
            return Path(value)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {hint.__name__}, got {value!r}") from exc
    raise SettingsError(f"{name}: unsupported setting type {hint!r}")
