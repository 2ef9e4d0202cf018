from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cangyun.box_settings import EdgeSettings
from cangyun.settings import SettingsError, dump_settings, load_settings, setting


@dataclass(frozen=True)
class Section:
    port: int = setting(80, "port")
    ratio: float = setting(0.5, "ratio")
    name: str = setting("x", "name")
    debug: bool = setting(False, "debug")
    ca: str | None = setting(None, "optional")


@dataclass(frozen=True)
class Example:
    web: Section = field(default_factory=Section)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def test_unknown_key_is_refused_with_its_name(tmp_path):
    with pytest.raises(SettingsError, match="web.prot"):
        load_settings(Example, write(tmp_path, "[web]\nprot = 81\n"), env={})


def test_wrong_type_names_the_key(tmp_path):
    with pytest.raises(SettingsError, match="web.port must be int"):
        load_settings(Example, write(tmp_path, '[web]\nport = "81"\n'), env={})


def test_environment_overrides_the_file(tmp_path):
    settings = load_settings(
        Example,
        write(tmp_path, "[web]\nport = 81\n"),
        env={"CANGYUN_WEB_PORT": "82", "CANGYUN_WEB_DEBUG": "yes", "CANGYUN_WEB_CA": "/ca.pem"},
    )
    assert (settings.web.port, settings.web.debug, settings.web.ca) == (82, True, "/ca.pem")


def test_bad_environment_value_is_refused():
    with pytest.raises(SettingsError, match="CANGYUN_WEB_RATIO"):
        load_settings(Example, None, env={"CANGYUN_WEB_RATIO": "lots"})


def test_missing_file_and_broken_toml_are_clear(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(Example, tmp_path / "missing.toml", env={})
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(Example, write(tmp_path, "[web\n"), env={})


def test_dump_then_load_is_identity(tmp_path):
    original = EdgeSettings()
    assert load_settings(EdgeSettings, write(tmp_path, dump_settings(original)), env={}) == original
