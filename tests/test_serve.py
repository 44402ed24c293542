"""`aztriage serve`: the console in a browser through textual-serve.

End to end: the server runs as `aztriage serve --demo` would, headless
Chromium (Debian's package, started here with a fresh profile) loads the
page, and the terminal it draws must show the demo inventory; a key typed in
the browser must switch panes. Around it: loopback only unless told
otherwise, no third-party resources in the page, and the guards against
DNS rebinding and cross-site websockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.browser_support import TERMINAL_HOOK, Chromium
from tui.cli import main
from tui.commands.serve import allowed_hosts, console_command
from tui.web.server import host_allowed, origin_allowed

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
    args = build_parser().parse_args(
        ["serve", "--arm-endpoint", "https://127.0.0.1:9443", "--ca-file", str(ca), "--auth", "none", "--subscription", "s1", "--subscription", "s2", "--read-only", "--present"]
    )
    for key, value in {"demo": False, "demo_estate": "demo", "cloud": "AzureCloud", "format": None}.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    argv = console_command(args)
    assert argv[:3] == [sys.executable, "-m", "tui.cli"]
    assert argv[3:] == ["--arm-endpoint", "https://127.0.0.1:9443", "--ca-file", str(ca.resolve()), "--auth", "none", "--subscription", "s1", "--subscription", "s2", "--read-only", "--present"]


def test_the_guards_answer_to_this_servers_names_only():
    hosts = allowed_hosts("127.0.0.1", 8000, True, None)
    assert hosts == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    assert host_allowed("127.0.0.1:8000", hosts) and host_allowed("LOCALHOST:8000", hosts)
    assert not host_allowed("attacker.example:8000", hosts) and not host_allowed("127.0.0.1:9000", hosts)
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", hosts)
    assert not origin_allowed("http://attacker.example", "127.0.0.1:8000", hosts)
    assert not origin_allowed(None, "127.0.0.1:8000", hosts) and not origin_allowed("null", "127.0.0.1:8000", hosts)
    proxied = allowed_hosts("127.0.0.1", 8000, True, "https://triage.example.org")
    assert origin_allowed("https://triage.example.org", "127.0.0.1:8000", proxied)
    assert host_allowed("triage.example.org", proxied)
    # A wildcard address without --public-url: a websocket must come from the page of the host it asked for.
    assert allowed_hosts("0.0.0.0", 8000, False, None) is None
    assert origin_allowed("http://10.0.0.5:8000", "10.0.0.5:8000", None)
    assert not origin_allowed("http://attacker.example", "10.0.0.5:8000", None)


def test_the_page_loads_nothing_from_elsewhere():
    page = (ROOT / "tui" / "web" / "app_index.html").read_text()
    assert "googleapis" not in page and "Content-Security-Policy" in page
    for line in page.splitlines():
        if "src=" in line or "href=" in line:
            assert "{{ config.static.url }}" in line or "w3.org" in line, line


# --- the server, end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    with open(log, "wb") as out:
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
    while True:
        if process.poll() is not None:
            pytest.fail(f"aztriage serve exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"aztriage serve did not listen on {port}: {log.read_text()}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", log
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def test_serve_says_where_and_that_it_is_loopback_only(served):
    url, log = served
    assert f"aztriage console on {url} (loopback only" in log.read_text()


async def test_a_request_for_another_host_name_is_refused(served):
    url, _log = served
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/", headers={"Host": "rebound.attacker.example"}) as resp:
            assert resp.status == 403
        async with session.get(url + "/") as resp:
            assert resp.status == 200
            assert resp.headers["X-Frame-Options"] == "DENY"
            page = await resp.text()
            assert "<title>aztriage</title>" in page and f"{url}/static/js/textual.js" in page


async def test_a_websocket_from_another_site_is_refused(served):
    url, _log = served
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(url.replace("http", "ws") + "/ws", origin="http://attacker.example")
        assert err.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url.replace("http", "ws") + "/ws")  # no Origin at all


async def test_headless_chromium_draws_the_inventory_and_takes_keys(served, tmp_path):
    url, _log = served
    browser = Chromium(tmp_path / "profile").start()
    try:
        async with aiohttp.ClientSession() as session:
            page = await browser.new_page(session)
            try:
                await page.send("Page.enable")
                await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": TERMINAL_HOOK})
                await page.send("Page.navigate", {"url": url + "/"})
                rows = await page.wait_for_text("erp-prod-eus-01", "UNAVAILABLE", "1 Inventory", timeout=60)
                screen = "\n".join(rows)
                assert "DEMO" in screen and "NAME" in screen and "POWER" in screen
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
