"""Headless Chromium (Debian's package) driven over the DevTools protocol, for
the end-to-end test of `aztriage serve`.

The browser is started with a fresh profile and told to resolve no names and
to send anything not on loopback to a dead proxy: the page under test is on
127.0.0.1 and nothing else may be fetched. xterm.js draws the terminal on a
canvas, so before the page's scripts run a small hook keeps a reference to
the xterm Terminal; the test then switches on xterm's screen-reader mode,
which writes every row of the terminal into the DOM as text, and reads that.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = os.environ.get("AZTRIAGE_CHROMIUM", "/usr/bin/chromium")
INSTALL_HINT = "install it with 'apt-get install -y chromium' (make test does this when run as root)"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--mute-audio",
    # No name lookups at all (the page is on an IP literal), and no route off loopback.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    # xterm.js draws with WebGL; without a GPU, Chromium's software WebGL stands in.
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--window-size=1280,800",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)

# Runs before the page's own scripts: keeps the first xterm Terminal the page creates
# (textual-serve's page assigns it to `this.terminal`) as window.__aztriageTerminal.
TERMINAL_HOOK = """
(() => {
  Object.defineProperty(Object.prototype, "terminal", {
    configurable: true,
    get() { return undefined; },
    set(value) {
      Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
      if (!window.__aztriageTerminal && value && typeof value.open === "function" && typeof value.write === "function") {
        window.__aztriageTerminal = value;
      }
    },
  });
})();
"""

SCREEN_TEXT = """
(() => {
  const term = window.__aztriageTerminal;
  if (!term) return {ready: false, why: "no terminal yet"};
  if (!term.options.screenReaderMode) term.options.screenReaderMode = true;
  const tree = document.querySelector(".xterm-accessibility-tree");
  const rows = tree ? Array.from(tree.children).map(e => e.textContent) : [];
  return {ready: true, rows: rows, cols: term.cols, lines: term.rows,
          firstByte: document.body.classList.contains("-first-byte"),
          closed: document.body.classList.contains("-closed")};
})()
"""


class BrowserError(AssertionError):
    pass


def chromium_path() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        raise BrowserError(f"Chromium is not installed at {CHROMIUM}: {INSTALL_HINT}")
    return path


class Chromium:
    """One headless browser process with its own throwaway profile."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    def start(self, timeout: float = 30.0) -> Chromium:
        binary = chromium_path()
        self.profile.mkdir(parents=True, exist_ok=True)
        log = open(self.profile / "chromium.log", "wb")
        try:
            self.process = subprocess.Popen(
                [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"Chromium exited with code {self.process.returncode} before it was ready: {self.log_tail()}")
            if active.exists():
                text = active.read_text().split()
                if text:
                    self.port = int(text[0])
                    return self
            time.sleep(0.05)
        raise BrowserError(f"Chromium did not open its DevTools port within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join((self.profile / "chromium.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(5)

    async def new_page(self, session: aiohttp.ClientSession) -> Page:
        async with session.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as resp:
            target = await resp.json(content_type=None)
        ws = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024)
        return Page(ws)


class Page:
    """A DevTools session on one tab: commands by id, events ignored."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 20.0) -> dict[str, Any]:
        message_id = next(self._ids)
        await self.ws.send_str(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise BrowserError(f"DevTools did not answer {method} within {timeout:.0f} s")
            msg = await self.ws.receive(timeout=remaining)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise BrowserError(f"the DevTools connection closed during {method}")
            data = json.loads(msg.data)
            if data.get("id") == message_id:
                if "error" in data:
                    raise BrowserError(f"{method} failed: {data['error']}")
                return data.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def screen_rows(self) -> dict[str, Any]:
        return await self.evaluate(SCREEN_TEXT)

    async def wait_for_text(self, *needles: str, timeout: float = 60.0) -> list[str]:
        """Poll the terminal's rows until every needle is on screen; the rows then."""
        deadline = asyncio.get_running_loop().time() + timeout
        state: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            state = await self.screen_rows() or {}
            rows = state.get("rows") or []
            screen = "\n".join(rows)
            if all(n in screen for n in needles):
                return rows
            if state.get("closed"):
                break
            await asyncio.sleep(0.2)
        shown = "\n".join(state.get("rows") or [])
        raise BrowserError(f"the page never showed {needles!r} (session closed: {state.get('closed')}, why: {state.get('why')}); it showed:\n{shown}")

    async def press(self, key: str, code: str, key_code: int) -> None:
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": key, "code": code, "text": key, "windowsVirtualKeyCode": key_code})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": key_code})

    async def screenshot(self, path: Path) -> Path:
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    async def close(self) -> None:
        await self.ws.close()
