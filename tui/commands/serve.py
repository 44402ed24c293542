"""`aztriage serve`: the console in a web browser, through textual-serve.

    aztriage serve --demo                 # http://127.0.0.1:8000, the demo estate
    aztriage serve --port 8080 --read-only --present

Every browser tab gets its own console process (`aztriage` with the same
connection options), so it signs in exactly as `aztriage` would on this
machine. That is why it listens on loopback only and asks for a secret:
each launch makes a random token, prints it once in the address to open
(http://127.0.0.1:8000/?token=...), and serves nothing without it (or the
cookie the first visit exchanges it for). Browsers elsewhere reach it
through an SSH tunnel or an authenticating TLS reverse proxy (see SAFETY).

Requests whose Host is not this server's name are refused (DNS rebinding),
and so is a websocket opened by a page from any other origin (another site
the operator has open must not be able to type into the console).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse

from tui.cli import CliError
from tui.web.names import HostNames, split_netloc

DEFAULT_PORT = 8000
TITLE = "aztriage"

SAFETY = """\
Safety: the page runs a console with this machine's Azure sign-in. Each
launch prints the address to open with a secret token in it
(http://127.0.0.1:8000/?token=...); the browser exchanges it for a cookie,
and without one nothing is served. Anyone who has the address drives the
console: do not share it, and stop the server (Ctrl+C) to make it void.
It listens on 127.0.0.1 unless you pass --host with --allow-remote. To use
it from another machine, prefer an SSH tunnel (same port on both ends):

    ssh -N -L 8000:127.0.0.1:8000 you@triage-host     # then open the printed address

or put a reverse proxy in front that does TLS and authentication (SSO or
client certificates) and forwards websockets, and tell aztriage the public URL:

    aztriage serve --public-url https://triage.example.org

(with the proxy sending https://triage.example.org to http://127.0.0.1:8000,
"Upgrade"/"Connection" headers passed for /ws). Add --read-only for a view
nobody can change anything from. --allow-remote with --host 0.0.0.0 serves
the whole network with the token as the only lock, over plain HTTP where
anyone on the path can read it: only on a network where that is acceptable.
There, without --public-url, the page answers only to an IP address on its
port, never to a host name (no DNS rebinding); give --public-url for a name."""


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        parents=parents,
        help="open the console in a web browser (textual-serve), on loopback",
        description="Serve the console to web browsers. Each browser tab runs its own console with the connection options given here.",
        epilog=SAFETY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need --allow-remote)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--allow-remote", action="store_true", help="allow a --host that is not loopback (read the safety note below first)")
    p.add_argument("--public-url", metavar="URL", help="the URL browsers use when a proxy or tunnel is in front (https://... makes the page use wss)")
    p.add_argument("--present", action="store_true", default=argparse.SUPPRESS, help="open every console in presenter mode")
    p.set_defaults(func=run)


# --- checks ---------------------------------------------------------------------------------


def parse_host(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address to listen on; None for "localhost". Names are refused: nothing here looks a name up."""
    if host.strip().lower() == "localhost":
        return None
    try:
        return ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        raise CliError(f"--host {host} is not an IP address: give the address to listen on, e.g. 127.0.0.1") from None


def check_host(host: str, allow_remote: bool) -> bool:
    """True when the address is on loopback; a CliError when it is not and --allow-remote is missing."""
    address = parse_host(host)
    loopback = address is None or address.is_loopback
    if not loopback and not allow_remote:
        raise CliError(
            f"--host {host} is not a loopback address and the page's only lock is a token sent over plain HTTP: anyone who "
            "reads it drives a console with your Azure sign-in; use an SSH tunnel, or a TLS proxy with authentication and --allow-remote "
            "(see 'aztriage serve --help')"
        )
    return loopback


def url_host(host: str) -> str:
    address = parse_host(host)
    if address is not None and address.version == 6:
        return f"[{address.compressed}]"
    return host.strip()


def check_public_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CliError(f"--public-url {url} is not an http:// or https:// URL")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise CliError(f"--public-url {url} must be a bare origin such as https://triage.example.org (the console is served at /)")
    return f"{parsed.scheme}://{parsed.netloc}"


def allowed_hosts(host: str, port: int, loopback: bool, public_url: str | None) -> HostNames:
    """The names this server answers to. A wildcard address without --public-url
    answers to any IP address on its port and to no name: nothing a DNS-rebinding
    page could use."""
    exact: set[tuple[str, int]] = set()
    if public_url:
        parsed = urlparse(public_url)
        public = split_netloc(parsed.netloc, 443 if parsed.scheme == "https" else 80)
        if public is not None:
            exact.add(public)
    address = parse_host(host)
    if address is not None and address.is_unspecified:
        return HostNames(frozenset(exact), None if exact else port)
    listening = split_netloc(f"{url_host(host)}:{port}", port)
    if listening is not None:
        exact.add(listening)
    if loopback:
        exact |= {("127.0.0.1", port), ("localhost", port), ("[::1]", port)}
    return HostNames(frozenset(exact))


# --- the console command each browser tab runs -------------------------------------------------------


def console_command(args: argparse.Namespace) -> list[str]:
    """`python -m tui.cli` with this command's connection options, for one browser tab."""
    argv = [sys.executable, "-m", "tui.cli"]
    if args.demo:
        argv.append("--demo")
        if args.demo_estate and args.demo_estate != "demo":
            estate = args.demo_estate
            if os.path.exists(estate):
                estate = str(Path(estate).resolve())
            argv += ["--demo-estate", estate]
    if args.arm_endpoint:
        argv += ["--arm-endpoint", args.arm_endpoint]
    if args.ca_file:
        argv += ["--ca-file", str(Path(args.ca_file).resolve())]
    if args.auth:
        argv += ["--auth", args.auth]
    if args.cloud and args.cloud != "AzureCloud":
        argv += ["--cloud", args.cloud]
    for subscription in args.subscription or ():
        argv += ["--subscription", subscription]
    if args.read_only:
        argv.append("--read-only")
    if getattr(args, "present", False):
        argv.append("--present")
    if getattr(args, "log_level", "INFO") != "INFO":
        argv += ["--log-level", args.log_level]
    return argv


def run(args: argparse.Namespace) -> int:
    loopback = check_host(args.host, args.allow_remote)
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a TCP port (1-65535)")
    public_url = check_public_url(args.public_url) if args.public_url else None

    # Bad options and a bad config fail here, once, not in every browser tab.
    from backend.config import ConfigError
    from tui.runtime import load_settings_config, settings_from_args

    if args.demo and args.arm_endpoint:
        # Each tab of `serve --demo` runs a demo of its own; attaching them all to one emulator is not offered.
        raise CliError("use either --demo or --arm-endpoint with serve, not both")
    settings_from_args(args)
    from tui.app import check_config

    try:
        check_config(load_settings_config())
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        from tui.web.server import ConsoleServer
    except ModuleNotFoundError as exc:
        raise CliError(f"{exc.name} is not installed; install aztriage with its dependencies (pip install textual-serve)") from None

    server = ConsoleServer(
        shlex.join(console_command(args)),
        host=args.host,
        port=args.port,
        public_url=public_url or f"http://{url_host(args.host)}:{args.port}",
        names=allowed_hosts(args.host, args.port, loopback, public_url),
        token=secrets.token_urlsafe(32),  # per launch; printed once, in the address to open
        title=TITLE,
        note="loopback only; see 'aztriage serve --help' to reach it from elsewhere"
        if loopback
        else "REACHABLE FROM THE NETWORK, with the token as its only lock",
    )
    if not loopback:
        print(
            f"aztriage: warning: serving on {args.host}: anyone who reaches port {args.port} with the token drives a console with this machine's Azure sign-in",
            file=sys.stderr,
        )
    try:
        server.serve()
    except OSError as exc:
        raise CliError(f"cannot listen on {url_host(args.host)}:{args.port}: {exc.strerror or exc}; choose another --port") from None
    return 0
