"""The operator's settings: a TOML file under the user's config directory,
overridden by environment variables.

    # ~/.config/aztriage/config.toml
    subscriptions = ["00000000-0000-0000-0000-000000000001"]
    refresh_interval = 60          # seconds between automatic refreshes; 0 turns it off
    theme = "textual-dark"
    probe_ports = [22, 3389]
    role_tag = "role"              # checklist: VMs with the same value of this tag share a role
    role_pattern = "^(?P<role>[a-z]+)-\\d+$"   # ... or, without the tag, this pattern on the name
    nonprod_pattern = "(^|-)(dev|test|qa)(-|\\d|$)"  # checklist: names of dev/test VMs (severities lowered)
    auto_probe = true              # the console probes running VMs (and reads boot logs) after a load
    inventory_engine = "auto"      # arm (subscription-wide lists), arg (Azure Resource Graph) or auto
    graph_threshold = 100          # auto: Azure Resource Graph above this many subscriptions

    [keys]                         # binding id = key(s)
    refresh = "f5"
    filter = "/,ctrl+f"

Environment: AZTRIAGE_CONFIG (another file), AZTRIAGE_SUBSCRIPTIONS (comma
separated), AZTRIAGE_REFRESH_INTERVAL, AZTRIAGE_THEME, AZTRIAGE_PROBE_PORTS,
AZTRIAGE_KEYS ("refresh=f5;filter=ctrl+f"), AZTRIAGE_ROLE_TAG, AZTRIAGE_ROLE_PATTERN, AZTRIAGE_NONPROD_PATTERN,
AZTRIAGE_AUTO_PROBE (true/false), AZTRIAGE_INVENTORY_ENGINE, AZTRIAGE_GRAPH_THRESHOLD.

A bad value raises ConfigError whose message is one line naming the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from backend.settings import ENGINES, GRAPH_THRESHOLD

DEFAULT_REFRESH_INTERVAL = 60.0
MIN_REFRESH_INTERVAL = 5.0
DEFAULT_THEME = "textual-dark"
DEFAULT_PROBE_PORTS = (22, 3389)
KNOWN_KEYS = (
    "subscriptions",
    "refresh_interval",
    "theme",
    "keys",
    "probe_ports",
    "role_tag",
    "role_pattern",
    "nonprod_pattern",
    "source_ip",
    "auto_probe",
    "inventory_engine",
    "graph_threshold",
)
DEFAULT_ROLE_TAG = "role"


class ConfigError(ValueError):
    """A bad setting; ``str()`` is one line that names the file or variable and the key."""


@dataclass(frozen=True)
class Config:
    subscriptions: tuple[str, ...] = ()
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL  # 0: no automatic refresh
    theme: str = DEFAULT_THEME
    keys: Mapping[str, str] = field(default_factory=dict)  # binding id -> key(s), comma separated
    probe_ports: tuple[int, ...] = DEFAULT_PROBE_PORTS
    role_tag: str = DEFAULT_ROLE_TAG  # "": roles by name pattern only
    role_pattern: str = ""  # regex on the VM name; group "role" (or group 1) is the role
    nonprod_pattern: str | None = None  # regex on the VM name for dev/test VMs (None: backend.checks' default, "": tags only)
    source_ip: str | None = None  # NSG evaluation source: an IP address or Internet / VirtualNetwork / AzureLoadBalancer
    auto_probe: bool = True  # the console probes running VMs in the background after each load (read-only)
    inventory_engine: str = "auto"  # backend.settings.ENGINES
    graph_threshold: int = GRAPH_THRESHOLD
    path: Path | None = field(default=None, compare=False)  # the file read, if any


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("AZTRIAGE_CONFIG"):
        return Path(env["AZTRIAGE_CONFIG"]).expanduser()
    from backend.paths import config_dir

    return config_dir() / "config.toml"


def _subscriptions(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: subscriptions must be a list of subscription ids (strings)")
    return tuple(v.strip() for v in value)


def _refresh_interval(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: refresh_interval must be a number of seconds, not {value!r}")
    if value != 0 and value < MIN_REFRESH_INTERVAL:
        raise ConfigError(f"{where}: refresh_interval must be 0 (off) or at least {MIN_REFRESH_INTERVAL:g} seconds, not {value!r}")
    return float(value)


def _theme(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: theme must be a theme name such as {DEFAULT_THEME!r}")
    return value.strip()


def _keys(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}: keys must be a table of binding id = key, e.g. [keys] refresh = "f5"')
    out: dict[str, str] = {}
    for binding_id, keys in value.items():
        if not isinstance(keys, str) or not keys.strip():
            name = binding_id if re.fullmatch(r"[\w.+-]+", str(binding_id)) else repr(str(binding_id))
            raise ConfigError(f'{where}: keys.{name} must be a key name such as "f5" (several: "f5,ctrl+r")')
        out[str(binding_id)] = keys.strip()
    return out


def _probe_ports(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: probe_ports must be a list of TCP ports, e.g. [22, 3389]")
    for port in value:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"{where}: probe_ports holds {port!r}, which is not a TCP port (1-65535)")
    return tuple(dict.fromkeys(value))


def _role_tag(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f'{where}: role_tag must be a tag name such as "role" ("" to use role_pattern only)')
    return value.strip()


def _regex(key: str, example: str) -> Callable[[Any, str], str]:
    """A parser for a setting that is a regular expression (role_pattern, nonprod_pattern)."""

    def parse(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a regular expression, e.g. {example}")
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f"{where}: {key} is not a valid regular expression: {exc}") from None
        return value

    return parse


_role_pattern = _regex("role_pattern", '"^(?P<role>[a-z]+)-\\\\d+$"')
_nonprod_pattern = _regex("nonprod_pattern", '"(^|-)(dev|test)(-|\\\\d|$)" on VM names ("" for tags only)')


def _source_ip(value: Any, where: str) -> str:
    from backend.network import Source

    if not isinstance(value, str):
        raise ConfigError(f"{where}: source_ip must be an IP address or Internet, VirtualNetwork, AzureLoadBalancer")
    try:
        Source.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: source_ip: {exc}") from None
    return value.strip()


def _auto_probe(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise ConfigError(f"{where}: auto_probe must be true or false")


def _inventory_engine(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in ENGINES:
        raise ConfigError(f"{where}: inventory_engine must be one of {', '.join(ENGINES)}")
    return value.strip().lower()


def _graph_threshold(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: graph_threshold must be a whole number of subscriptions (0 or more)")
    return value


_PARSERS = {
    "subscriptions": _subscriptions,
    "refresh_interval": _refresh_interval,
    "theme": _theme,
    "keys": _keys,
    "probe_ports": _probe_ports,
    "role_tag": _role_tag,
    "role_pattern": _role_pattern,
    "nonprod_pattern": _nonprod_pattern,
    "source_ip": _source_ip,
    "auto_probe": _auto_probe,
    "inventory_engine": _inventory_engine,
    "graph_threshold": _graph_threshold,
}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """Environment variables as config values (strings turned into the file's types)."""
    out: dict[str, Any] = {}
    if "AZTRIAGE_SUBSCRIPTIONS" in env:
        out["subscriptions"] = _split(env["AZTRIAGE_SUBSCRIPTIONS"])
    if "AZTRIAGE_REFRESH_INTERVAL" in env:
        raw = env["AZTRIAGE_REFRESH_INTERVAL"].strip()
        try:
            out["refresh_interval"] = float(raw)
        except ValueError:
            raise ConfigError(f"AZTRIAGE_REFRESH_INTERVAL: refresh_interval must be a number of seconds, not {raw!r}") from None
    if "AZTRIAGE_THEME" in env:
        out["theme"] = env["AZTRIAGE_THEME"]
    if "AZTRIAGE_PROBE_PORTS" in env:
        ports = []
        for part in _split(env["AZTRIAGE_PROBE_PORTS"]):
            try:
                ports.append(int(part))
            except ValueError:
                raise ConfigError(f"AZTRIAGE_PROBE_PORTS: probe_ports holds {part!r}, which is not a TCP port (1-65535)") from None
        out["probe_ports"] = ports
    if "AZTRIAGE_KEYS" in env:
        keys: dict[str, str] = {}
        for pair in env["AZTRIAGE_KEYS"].split(";"):
            if not pair.strip():
                continue
            binding_id, sep, key = pair.partition("=")
            if not sep:
                raise ConfigError(f"AZTRIAGE_KEYS: {pair.strip()!r} is not binding_id=key (pairs separated by ';')")
            keys[binding_id.strip()] = key
        out["keys"] = keys
    for key in ("role_tag", "role_pattern", "nonprod_pattern", "source_ip", "auto_probe", "inventory_engine", "graph_threshold"):
        if f"AZTRIAGE_{key.upper()}" in env:
            out[key] = env[f"AZTRIAGE_{key.upper()}"]
    return out


def _parse_toml(fh: BinaryIO, where: str) -> dict[str, Any]:
    import tomllib  # here: without a config file, every command starts without it (about 5 ms)

    try:
        return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the config file (a missing file means defaults), then apply the environment."""
    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else config_path(env)
    values: dict[str, Any] = {}
    read: Path | None = None
    where = f"config file {file}"
    try:
        with open(file, "rb") as fh:
            raw = _parse_toml(fh, where)
        read = file
    except FileNotFoundError:
        raw = {}
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror}") from None
    for key, value in raw.items():
        if key not in _PARSERS:
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {', '.join(KNOWN_KEYS)})")
        values[key] = _PARSERS[key](value, where)
    for key, value in _from_environment(env).items():
        variable = f"AZTRIAGE_{key.upper()}"
        values[key] = _PARSERS[key](value, variable)
    return Config(path=read, **values)
