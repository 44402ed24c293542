"""backend/config.py: the TOML file, environment overrides, one-line errors."""

from __future__ import annotations

import pytest

from backend.config import Config, ConfigError, load_config


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_gives_defaults(tmp_path):
    config = load_config(tmp_path / "nope.toml", environ={})
    assert config == Config()
    assert config.refresh_interval == 60 and config.probe_ports == (22, 3389) and config.path is None


def test_file_values_are_read(tmp_path):
    path = write(
        tmp_path,
        'subscriptions = ["sub-a", "sub-b"]\nrefresh_interval = 30\ntheme = "nord"\nprobe_ports = [22, 2222]\n[keys]\nrefresh = "f5"\n',
    )
    config = load_config(path, environ={})
    assert config.subscriptions == ("sub-a", "sub-b")
    assert config.refresh_interval == 30.0
    assert config.theme == "nord"
    assert config.probe_ports == (22, 2222)
    assert config.keys == {"refresh": "f5"}
    assert config.path == path


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, "refresh_interval = 30\nsubscriptions = ['a']\n")
    env = {
        "AZTRIAGE_REFRESH_INTERVAL": "120",
        "AZTRIAGE_SUBSCRIPTIONS": "x, y",
        "AZTRIAGE_THEME": "gruvbox",
        "AZTRIAGE_PROBE_PORTS": "3389",
        "AZTRIAGE_KEYS": "refresh=f5;help=f1",
    }
    config = load_config(path, environ=env)
    assert config.refresh_interval == 120.0
    assert config.subscriptions == ("x", "y")
    assert config.theme == "gruvbox"
    assert config.probe_ports == (3389,)
    assert config.keys == {"refresh": "f5", "help": "f1"}


def test_config_env_var_names_another_file(tmp_path):
    path = write(tmp_path, "refresh_interval = 0\n")
    assert load_config(environ={"AZTRIAGE_CONFIG": str(path)}).refresh_interval == 0


@pytest.mark.parametrize(
    "text, key",
    [
        ("refresh_interval = 'soon'\n", "refresh_interval"),
        ("refresh_interval = 1\n", "refresh_interval"),
        ("probe_ports = [22, 70000]\n", "probe_ports"),
        ("subscriptions = [1, 2]\n", "subscriptions"),
        ("theme = 3\n", "theme"),
        ("[keys]\nrefresh = 5\n", "keys.refresh"),
        ("refresh = 30\n", "'refresh'"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    message = str(err.value)
    assert key in message and str(path) in message
    assert "\n" not in message


def test_bad_toml_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "refresh_interval = = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(path) in str(err.value) and "line 1" in str(err.value)


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "none.toml", environ={"AZTRIAGE_REFRESH_INTERVAL": "fast"})
    assert "AZTRIAGE_REFRESH_INTERVAL" in str(err.value) and "refresh_interval" in str(err.value)


def test_source_ip_from_file_and_environment(tmp_path):
    from backend.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text('source_ip = "203.0.113.7"\n')
    assert load_config(path, {}).source_ip == "203.0.113.7"
    assert load_config(path, {"AZTRIAGE_SOURCE_IP": "VirtualNetwork"}).source_ip == "VirtualNetwork"
    path.write_text('source_ip = "the office"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, {})
    assert "source_ip" in str(err.value) and str(path) in str(err.value)


def test_auto_probe_is_on_by_default_and_turned_off_by_file_or_environment(tmp_path):
    assert load_config(tmp_path / "nope.toml", environ={}).auto_probe is True
    assert load_config(write(tmp_path, "auto_probe = false\n"), environ={}).auto_probe is False
    assert load_config(tmp_path / "nope.toml", environ={"AZTRIAGE_AUTO_PROBE": "off"}).auto_probe is False
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "auto_probe = 'sometimes'\n"), environ={})
    assert "auto_probe must be true or false" in str(err.value) and "\n" not in str(err.value)
