"""Settings precedence: defaults < config file < ASKDOCS_* variables < overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from askdocs import config
from askdocs.errors import ConfigError


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    file = write_config(tmp_path / "c.toml", "[search]\nk = 7\nmode = 'keyword'\n")
    environ = {"ASKDOCS_CONFIG": str(file), "ASKDOCS_SEARCH__MODE": "dense"}
    assert config.load(environ={}).search.k == config.SearchSettings().k
    settings = config.load(environ=environ)
    assert (settings.search.k, settings.search.mode) == (7, "dense")
    assert config.load({"search.k": 3}, environ=environ).search.k == 3


def test_the_user_config_file_is_read_only_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ASKDOCS_CONFIG", raising=False)
    write_config(tmp_path / "askdocs" / "config.toml", "[search]\nk = 9\n")
    assert config.load().search.k == 9
    assert config.load(environ={}).search.k == config.SearchSettings().k


def test_bad_settings_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(environ={"ASKDOCS_CONFIG": str(tmp_path / "missing.toml")})
    file = write_config(tmp_path / "c.toml", "[search]\nnope = 1\n")
    with pytest.raises(ConfigError, match=r"c\.toml: unknown setting 'nope'"):
        config.load(environ={"ASKDOCS_CONFIG": str(file)})
    with pytest.raises(ConfigError, match="environment"):
        config.load(environ={"ASKDOCS_SEARCH__K": "many"})
