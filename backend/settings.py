"""How to reach ARM: endpoint, trust, authentication. Plain data, no SDK."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlparse

# Instance views (one GET per VM: agent, maintenance, fault domain) an inventory reads by default.
DEFAULT_INSTANCE_VIEWS = 500

# Inventory engines: the subscription-wide ARM lists, Azure Resource Graph, or ARG above
# GRAPH_THRESHOLD subscriptions (ARM: 11 requests per subscription, in parallel, outside
# ARG's per-user quota; ARG: 3 queries plus a page per 1,000 resources per 100 subscriptions).
ENGINES = ("auto", "arm", "arg")
GRAPH_THRESHOLD = 100

AUTH_MODES = ("default", "cli", "device-code", "env", "managed-identity", "none")

# ARM endpoint and token scope of each national cloud (azure.mgmt.core.tools.get_arm_endpoints).
CLOUDS = {
    "AzureCloud": ("https://management.azure.com", "https://management.azure.com/.default"),
    "AzureUSGovernment": ("https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net/.default"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
}


class SettingsError(ValueError):
    """A bad connection setting; the message is one sentence for the operator."""


def is_loopback_url(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConnectionSettings:
    arm_endpoint: str | None = None  # None: the cloud's own endpoint
    ca_file: str | None = None  # trust only this CA (the emulator's); None: system trust
    auth: str = "default"
    cloud: str = "AzureCloud"
    subscriptions: tuple[str, ...] = ()
    read_only: bool = False
    demo: bool = False
    polling_interval: float | None = None  # None: ARM's Retry-After / SDK default
    max_concurrency: int = 16  # subscriptions listed at once (each sends 11 lists concurrently)
    engine: str = "auto"  # inventory engine (ENGINES): auto uses Resource Graph above graph_threshold subscriptions
    graph_threshold: int = GRAPH_THRESHOLD
    label: str = field(default="", compare=False)

    def uses_graph(self, subscriptions: int) -> bool:
        """Whether an inventory of this many subscriptions comes from Azure Resource Graph."""
        return self.engine == "arg" or (self.engine == "auto" and subscriptions > self.graph_threshold)

    @property
    def endpoint(self) -> str:
        return (self.arm_endpoint or CLOUDS[self.cloud][0]).rstrip("/")

    @property
    def scope(self) -> str:
        if self.arm_endpoint and self.cloud == "AzureCloud":
            return CLOUDS["AzureCloud"][1]
        return CLOUDS[self.cloud][1]

    @property
    def display_name(self) -> str:
        if self.demo:
            return "DEMO"
        if self.arm_endpoint:
            return urlparse(self.arm_endpoint).netloc
        return self.cloud

    def validate(self) -> ConnectionSettings:
        if self.cloud not in CLOUDS:
            raise SettingsError(f"unknown cloud {self.cloud!r}: use one of {', '.join(CLOUDS)}")
        if self.engine not in ENGINES:
            raise SettingsError(f"unknown inventory engine {self.engine!r}: use one of {', '.join(ENGINES)}")
        if self.auth not in AUTH_MODES:
            raise SettingsError(f"unknown auth mode {self.auth!r}: use one of {', '.join(AUTH_MODES)}")
        if self.arm_endpoint:
            parsed = urlparse(self.arm_endpoint)
            if parsed.scheme != "https" or not parsed.hostname:
                raise SettingsError(f"--arm-endpoint must be an https:// URL, not {self.arm_endpoint!r}")
        if self.auth == "none" and not (self.arm_endpoint and is_loopback_url(self.arm_endpoint)):
            raise SettingsError("--auth none sends a dummy token and is only allowed for an endpoint on loopback (127.0.0.0/8)")
        if self.ca_file:
            try:
                with open(self.ca_file, "rb") as fh:
                    if b"BEGIN CERTIFICATE" not in fh.read(1 << 20):
                        raise SettingsError(f"--ca-file {self.ca_file} holds no PEM certificate")
            except OSError as exc:
                raise SettingsError(f"--ca-file {self.ca_file} cannot be read: {exc.strerror}") from None
        return self
