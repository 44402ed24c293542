"""`aztriage serve`: the console in a browser through textual-serve.

End to end: the server runs as `aztriage serve --demo` would, headless
Chromium (Debian's package, started here with a fresh profile) loads the
page, and the terminal it draws must show the demo inventory; a key typed in
the browser must switch panes. Around it: loopback only unless told
otherwise, no third-party resources in the page, and the guards against
DNS rebinding and cross-site websockets."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest

from tests.browser_support import TERMINAL_HOOK, Chromium
from tui.cli import main
from tui.commands.serve import allowed_hosts, console_command
from tui.web.names import host_allowed, origin_allowed

pytestmark = pytest.mark.xdist_group("serve")

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["serve", "--host", "0.0.0.0"], "--host 0.0.0.0 is not a loopback address"),
        (["serve", "--host", "10.1.2.3", "--port", "8000"], "use an SSH tunnel"),
        (["serve", "--host", "triage.example.org"], "is not an IP address"),
        (["serve", "--port", "70000"], "is not a TCP port"),
        (["serve", "--public-url", "ftp://x"], "is not an http:// or https:// URL"),
        (["serve", "--public-url", "https://triage.example.org/console"], "must be a bare origin"),
        (["serve", "--demo", "--arm-endpoint", "https://127.0.0.1:1"], "use either --demo or --arm-endpoint"),
    ],
)
def test_bad_options_are_refused_in_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_each_tab_runs_the_console_with_the_same_options(tmp_path):
    from tui.cli import build_parser

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    options = [
        "--arm-endpoint",
        "https://127.0.0.1:9443",
        "--ca-file",
        str(ca),
        "--auth",
        "none",
        "--subscription",
        "s1",
        "--subscription",
        "s2",
        "--read-only",
        "--present",
    ]
    args = build_parser().parse_args(["serve", *options])
    for key, value in {"demo": False, "demo_estate": "demo", "cloud": "AzureCloud", "format": None}.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    argv = console_command(args)
    assert argv[:3] == [sys.executable, "-m", "tui.cli"]
    options[options.index(str(ca))] = str(ca.resolve())  # the CA file by its absolute path
    assert argv[3:] == options


def test_the_guards_answer_to_this_servers_names_only():
    names = allowed_hosts("127.0.0.1", 8000, True, None)
    assert names.exact == {("127.0.0.1", 8000), ("localhost", 8000), ("[::1]", 8000)} and names.any_address_port is None
    assert host_allowed("127.0.0.1:8000", names) and host_allowed("LOCALHOST:8000", names) and host_allowed("[0:0::1]:8000", names)
    assert not host_allowed("attacker.example:8000", names) and not host_allowed("127.0.0.1:9000", names)
    assert not host_allowed("127.0.0.2:8000", names) and not host_allowed(None, names)
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", names)
    assert not origin_allowed("http://attacker.example", "127.0.0.1:8000", names)
    assert not origin_allowed(None, "127.0.0.1:8000", names) and not origin_allowed("null", "127.0.0.1:8000", names)
    proxied = allowed_hosts("127.0.0.1", 8000, True, "https://triage.example.org")
    assert origin_allowed("https://triage.example.org", "127.0.0.1:8000", proxied)
    assert host_allowed("triage.example.org", proxied) and host_allowed("triage.example.org:443", proxied)
    assert not origin_allowed("http://triage.example.org", "127.0.0.1:8000", proxied)  # not the https origin


def test_allow_remote_without_public_url_pins_host_and_origin_to_the_listening_address():
    # One address: that address on that port, nothing else.
    one = allowed_hosts("10.1.2.3", 8000, False, None)
    assert host_allowed("10.1.2.3:8000", one)
    assert not host_allowed("rebound.attacker.example:8000", one) and not host_allowed("10.1.2.4:8000", one) and not host_allowed("localhost:8000", one)
    assert origin_allowed("http://10.1.2.3:8000", "10.1.2.3:8000", one)
    assert not origin_allowed("http://rebound.attacker.example:8000", "10.1.2.3:8000", one)
    # A wildcard address: any of the machine's IP addresses on the port, never a name (what
    # DNS rebinding needs), and a websocket only from the page of the address it came to.
    wildcard = allowed_hosts("0.0.0.0", 8000, False, None)
    assert host_allowed("10.0.0.5:8000", wildcard) and host_allowed("[fd00::5]:8000", wildcard)
    assert not host_allowed("rebound.attacker.example:8000", wildcard) and not host_allowed("10.0.0.5:9000", wildcard)
    assert not host_allowed("10.0.0.5", wildcard)  # port 80 is not the listening port
    assert origin_allowed("http://10.0.0.5:8000", "10.0.0.5:8000", wildcard)
    assert not origin_allowed("http://10.9.9.9:8000", "10.0.0.5:8000", wildcard)  # another machine's page on the same port
    assert not origin_allowed("http://rebound.attacker.example:8000", "rebound.attacker.example:8000", wildcard)
    # With --public-url, the public name only.
    public = allowed_hosts("::", 8000, False, "https://triage.example.org")
    assert host_allowed("triage.example.org", public) and not host_allowed("10.0.0.5:8000", public)


MALFORMED_HOSTS = [
    "[::1",
    "127.0.0.1:99999",
    "127.0.0.1:abc",
    "127.0.0.1:8000:8000",
    "a b:8000",
    "user@127.0.0.1:8000",
    "127.0.0.1:8000/x",
    "\x00",
    "",
    "[fe80::1%eth0]:8000",
    "ex\u0430mple.org:8000",
]
MALFORMED_ORIGINS = [
    "http://[::1",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:abc",
    "http://[zz::1]:8000",
    "javascript:alert(1)",
    "http://127.0.0.1:8000/path",
    "http:///",
    "//127.0.0.1:8000",
    "http://user:pw@127.0.0.1:8000",
    "\u0000",
]


def test_malformed_host_and_origin_headers_are_refused_without_an_exception():
    wildcard = allowed_hosts("0.0.0.0", 8000, False, None)
    for names in (allowed_hosts("127.0.0.1", 8000, True, None), wildcard):
        for host in MALFORMED_HOSTS:
            assert not host_allowed(host, names), host
        for origin in MALFORMED_ORIGINS:
            assert not origin_allowed(origin, "127.0.0.1:8000", names), origin
    for host in MALFORMED_HOSTS:  # with a wildcard address the Origin is compared with the Host
        assert not origin_allowed("http://10.0.0.5:8000", host, wildcard), host


def test_the_secret_is_compared_in_constant_time_and_anything_else_is_wrong():
    from tui.web.names import same_secret

    assert same_secret("s3cret-Token_x", "s3cret-Token_x")
    for wrong in (None, "", "s3cret-Token_", "s3cret-Token_xx", "S3CRET-TOKEN_X", "s3cret-Token_\u00e9", "\udcff"):
        assert not same_secret(wrong, "s3cret-Token_x"), wrong


def test_the_page_loads_nothing_from_elsewhere():
    page = (ROOT / "tui" / "web" / "app_index.html").read_text()
    assert "googleapis" not in page and "Content-Security-Policy" in page
    for line in page.splitlines():
        if "src=" in line or "href=" in line:
            assert "{{ config.static.url }}" in line or "w3.org" in line, line


# --- the server, end to end -------------------------------------------------------------------------------


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT, no slash
    token: str  # from the one line the server printed
    output: Path  # what the server wrote to stdout and stderr
    log_file: Path  # its aztriage.log (a state directory of its own)

    def log_lines(self) -> list[str]:
        return self.log_file.read_text().splitlines() if self.log_file.exists() else []


TOKEN_LINE = re.compile(r"aztriage console on (http://127\.0\.0\.1:\d+)/\?token=([A-Za-z0-9_-]+) \(")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    port = free_port()
    work = tmp_path_factory.mktemp("serve")
    output = work / "serve.out"
    env = dict(os.environ, XDG_STATE_HOME=str(work / "state"))
    env.pop("NO_COLOR", None)
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the consoles it starts go with it
        )
    deadline = time.monotonic() + 30
    while not (match := TOKEN_LINE.search(output.read_text())):
        if process.poll() is not None:
            pytest.fail(f"aztriage serve exited with {process.returncode}: {output.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"aztriage serve did not say where it listens: {output.read_text()}")
        time.sleep(0.1)
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    yield Served(match.group(1), match.group(2), output, work / "state" / "aztriage" / "log" / "aztriage.log")
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def client(**kwargs) -> aiohttp.ClientSession:
    """A client that keeps cookies for an IP address, as browsers do (aiohttp's default jar does not)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)


async def logged_in(session: aiohttp.ClientSession, served: Served) -> None:
    async with session.get(f"{served.url}/?token={served.token}", allow_redirects=False) as resp:
        assert resp.status == 303


def test_serve_prints_the_address_with_its_token_once_and_never_logs_it(served):
    printed = served.output.read_text()
    assert f"aztriage console on {served.url}/?token={served.token} (loopback only" in printed
    assert len(served.token) >= 43  # 32 random bytes
    assert printed.count(served.token) == 1
    assert served.token not in served.log_file.read_text()


async def test_without_the_token_nothing_is_served(served):
    async with client() as session:
        for path in ("/", "/?fontsize=20", "/static/js/textual.js", "/static/", "/download/x"):
            async with session.get(served.url + path, allow_redirects=False) as resp:
                assert resp.status == 403, path
                page = await resp.text()
                assert "Open the address with the token" in page and "textual.js" not in page and "xterm" not in page, path
                assert len(page) < 400 and "set-cookie" not in resp.headers, path
    assert served.token not in served.log_file.read_text()


async def test_a_wrong_token_or_cookie_is_refused(served):
    wrong = served.token[:-1] + ("A" if served.token[-1] != "A" else "B")
    async with client() as session:
        for token in (wrong, served.token[:-1], served.token + "x", "", "%FF%FE", "\u00e9" * 43):
            async with session.get(served.url + "/", params={"token": token}, allow_redirects=False) as resp:
                assert resp.status == 403, token
                assert "token in the address is wrong" in await resp.text() and "set-cookie" not in resp.headers
    port = served.url.rsplit(":", 1)[1]
    for cookies in ({f"aztriage-token-{port}": wrong}, {f"aztriage-token-{port}": ""}, {"aztriage-token-1": served.token}):
        async with client(cookies=cookies) as session:
            async with session.get(served.url + "/", allow_redirects=False) as resp:
                assert resp.status == 403, cookies


async def test_the_token_becomes_an_httponly_samesite_strict_cookie_and_leaves_the_address(served):
    async with client() as session:
        async with session.get(f"{served.url}/?fontsize=18&token={served.token}", allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/?fontsize=18"
            (header,) = resp.headers.getall("Set-Cookie")
            cookie = SimpleCookie(header)
            (morsel,) = cookie.values()
            assert morsel.key == f"aztriage-token-{served.url.rsplit(':', 1)[1]}" and morsel.value == served.token
            assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
            assert not morsel["secure"]  # plain http on loopback; https with an https --public-url
            assert not morsel["expires"] and not morsel["max-age"]  # gone with the browser session
        async with session.get(served.url + "/?fontsize=18") as resp:
            assert resp.status == 200
            page = await resp.text()
            assert "<title>aztriage</title>" in page and f"{served.url}/static/js/textual.js" in page
            assert resp.headers["Referrer-Policy"] == "no-referrer"
        async with session.get(served.url + "/static/js/textual.js") as resp:
            assert resp.status == 200


async def test_a_request_for_another_host_name_is_refused(served):
    async with client() as session:
        await logged_in(session, served)
        async with session.get(served.url + "/", headers={"Host": f"rebound.attacker.example:{served.url.rsplit(':', 1)[1]}"}) as resp:
            assert resp.status == 403
            assert "does not answer to that host name" in await resp.text()
        async with session.get(served.url + "/") as resp:
            assert resp.status == 200
            assert resp.headers["X-Frame-Options"] == "DENY"


async def test_a_websocket_without_the_cookie_or_from_another_site_is_refused(served):
    ws_url = served.url.replace("http", "ws") + "/ws"
    async with client() as session:
        # This server's own origin, but no cookie: refused.
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(ws_url, origin=served.url)
        assert err.value.status == 403
        # Nor does the token in the websocket's address stand in for the cookie.
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{ws_url}?token={served.token}", origin=served.url)
        assert err.value.status == 403
        await logged_in(session, served)
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(ws_url, origin="http://attacker.example")
        assert err.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(ws_url)  # no Origin at all


async def test_a_malformed_origin_or_host_is_403_and_one_log_line(served):
    async with client() as session:
        seen = len(served.log_lines())
        await logged_in(session, served)
        # The access log is written after the response: wait for the sign-in's line, so it is not taken for a refusal's.
        for _ in range(100):
            if any("GET '/' 303" in line for line in served.log_lines()[seen:]):
                break
            await asyncio.sleep(0.02)
        for headers in [*({"Origin": o} for o in MALFORMED_ORIGINS if "\x00" not in o), *({"Host": h} for h in MALFORMED_HOSTS if h and "\x00" not in h)]:
            headers = {
                **headers,
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            }
            lines, printed = served.log_lines(), served.output.read_text()
            async with session.get(served.url + "/ws", headers=headers) as resp:
                assert resp.status == 403, headers
            await asyncio.sleep(0.05)  # the access log is written after the response
            new = served.log_lines()[len(lines) :]
            assert len(new) == 1 and "WARNING aztriage.serve: refused GET '/ws'" in new[0], (headers, new)
            assert served.output.read_text() == printed
    text = served.log_file.read_text()
    assert "Traceback" not in text and " ERROR " not in text


async def test_a_wildcard_server_refuses_a_rebinding_name_and_serves_its_ip_address():
    """`--host 0.0.0.0 --allow-remote` without --public-url, its guard run in-process and
    reached over loopback only (the Host header says which address the browser used)."""
    from aiohttp.test_utils import TestServer

    from tui.web.server import ConsoleServer

    port = free_port()
    token = "t0ken-" * 8
    server = ConsoleServer(
        "true", host="0.0.0.0", port=port, public_url=f"http://0.0.0.0:{port}", names=allowed_hosts("0.0.0.0", port, False, None), token=token, title="aztriage"
    )
    async with TestServer(await server._make_app(), host="127.0.0.1", port=port) as test_server:
        url = str(test_server.make_url("/"))
        async with client(cookies={f"aztriage-token-{port}": token}) as session:
            async with session.get(url, headers={"Host": f"10.0.0.5:{port}"}) as resp:
                assert resp.status == 200 and "<title>aztriage</title>" in await resp.text()
            for host in (f"rebound.attacker.example:{port}", f"localhost:{port}", "10.0.0.5:80", "10.0.0.5"):
                async with session.get(url, headers={"Host": host}) as resp:
                    assert resp.status == 403, host
            ws_headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
            async with session.get(url + "ws", headers={**ws_headers, "Host": f"10.0.0.5:{port}", "Origin": f"http://10.9.9.9:{port}"}) as resp:
                assert resp.status == 403  # a page of another address on the same port
    assert server.refused == 5


async def test_headless_chromium_draws_the_inventory_and_takes_keys(served, tmp_path):
    browser = Chromium(tmp_path / "profile").start()
    try:
        async with aiohttp.ClientSession() as session:
            page = await browser.new_page(session)
            try:
                await page.send("Page.enable")
                await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": TERMINAL_HOOK})
                # The address the server printed, token and all, as the operator opens it.
                await page.send("Page.navigate", {"url": f"{served.url}/?token={served.token}"})
                rows = await page.wait_for_text("erp-prod-eus-01", "UNAVAILABLE", "1 Inventory", timeout=60)
                screen = "\n".join(rows)
                assert "DEMO" in screen and "NAME" in screen and "POWER" in screen
                # The token left the address bar, and the page's scripts cannot read the cookie.
                assert await page.evaluate("location.href") == served.url + "/"
                assert await page.evaluate("document.cookie") == ""
                assert await page.evaluate("document.fonts.check('16px \"Roboto Mono\"')")
                await page.evaluate("window.__aztriageTerminal.focus()")
                await page.press("2", "Digit2", 50)
                await page.wait_for_text("Resource Health", "Service Health events", timeout=30)
                await page.screenshot(tmp_path / "health.png")
                assert (tmp_path / "health.png").stat().st_size > 10_000
            finally:
                await page.close()
    finally:
        browser.stop()
