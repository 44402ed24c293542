"""A terminal the tests can type into and read: a private tmux server (its own
socket, no user config) running one command in an 80x24 pane."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

INSTALL_HINT = "install it with 'apt-get install -y tmux' (make test does this when run as root)"
_counter = itertools.count(1)

SGR = re.compile(r"\x1b\[([0-9;:]*)m")

CONSOLE = [sys.executable, "-m", "tui.cli", "--demo"]
# The caller's terminal must not leak into the test's.
UNSET = ("NO_COLOR", "COLORTERM", "TEXTUAL_COLOR_SYSTEM", "TEXTUAL_DRIVER", "TERM_PROGRAM", "AZTRIAGE_THEME", "AZTRIAGE_CONFIG")


def tmux_path() -> str:
    path = shutil.which("tmux")
    if path is None:
        raise AssertionError(f"tmux is not installed: {INSTALL_HINT}")
    return path


class Tmux:
    def __init__(self, workdir: Path, width: int = 80, height: int = 24) -> None:
        self.binary = tmux_path()
        self.socket = f"aztriage-test-{os.getpid()}-{next(_counter)}"
        self.width, self.height = width, height
        self.conf = workdir / "tmux.conf"
        self.status_file = workdir / "exit-status"
        # No status line (the pane is the whole 80x24), keep the pane after the command exits
        # (to read its exit status), and pass escape through at once.
        self.conf.write_text("set -g status off\nset -g remain-on-exit on\nset -sg escape-time 0\nset -g history-limit 0\n")

    def _run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run([self.binary, "-L", self.socket, "-f", str(self.conf), *args], capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self, argv: list[str], env: dict[str, str], unset: tuple[str, ...] = ()) -> None:
        command = ["env", *(f"-u{name}" for name in unset), *(f"{k}={v}" for k, v in env.items()), *argv]
        # The exit status goes to a file: tmux sometimes leaves a finished pane's process
        # unreaped under load, and then never reports its status.
        wrapped = ["sh", "-c", f'"$@"; echo $? > {shlex.quote(str(self.status_file))}', "sh", *command]
        self._run("new-session", "-d", "-x", str(self.width), "-y", str(self.height), "-s", "main", shlex.join(wrapped))
        size = self._run("display-message", "-p", "-t", "main", "#{pane_width}x#{pane_height}").strip()
        assert size == f"{self.width}x{self.height}", size

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", "main")

    def screen_with_escapes(self) -> str:
        return self._run("capture-pane", "-p", "-e", "-t", "main")

    def keys(self, *keys: str) -> None:
        """tmux key names: "Enter", "Escape", "2", "/"."""
        self._run("send-keys", "-t", "main", *keys)

    def type(self, text: str) -> None:
        self._run("send-keys", "-t", "main", "-l", text)

    def exit_status(self) -> int | None:
        try:
            text = self.status_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None

    def wait_for(self, *needles: str, timeout: float = 30.0, absent: tuple[str, ...] = ()) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(n in screen for n in needles) and not any(a in screen for a in absent):
                return screen
            if self.exit_status() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the terminal never showed {needles!r} (without {absent!r}); it shows:\n{screen}")

    def wait_exit(self, timeout: float = 20.0) -> int:
        """The program's exit status once it has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.exit_status()
            if status is not None:
                return status
            time.sleep(0.1)
        raise AssertionError(f"the program did not exit within {timeout:.0f} s; the terminal shows:\n{self.screen()}")

    def kill(self) -> None:
        self._run("kill-server", check=False)


def colours(text_with_escapes: str) -> set[str]:
    """Every colour an SGR sequence in the text sets: "fg:38;5;231", "bg:41", "fg:38;2;1;2;3"."""
    found = set()
    for match in SGR.finditer(text_with_escapes):
        params = [p for p in re.split("[;:]", match.group(1)) if p != ""]
        i = 0
        while i < len(params):
            code = int(params[i])
            if code in (38, 48) and i + 1 < len(params):
                which = "fg" if code == 38 else "bg"
                if params[i + 1] == "5" and i + 2 < len(params):
                    found.add(f"{which}:38;5;{params[i + 2]}" if code == 38 else f"{which}:48;5;{params[i + 2]}")
                    i += 3
                    continue
                if params[i + 1] == "2" and i + 4 < len(params):
                    found.add(f"{which}:{code};2;{params[i + 2]};{params[i + 3]};{params[i + 4]}")
                    i += 5
                    continue
            if 30 <= code <= 37 or 90 <= code <= 97:
                found.add(f"fg:{code}")
            elif 40 <= code <= 47 or 100 <= code <= 107:
                found.add(f"bg:{code}")
            i += 1
    return found


def private_home(tmp_path: Path) -> dict[str, str]:
    """A home of its own: no journal of other tests' runs (whose notice would cover the table)."""
    return {
        "AZTRIAGE_CONFIG": str(tmp_path / "none.toml"),
        **{f"XDG_{kind.upper()}_HOME": str(tmp_path / kind) for kind in ("data", "config", "state", "cache")},
    }


def start_console(term: Tmux, tmp_path: Path, *args: str, **env: str) -> None:
    """`aztriage --demo ARGS` in the pane as an operator's xterm runs it, with a home of its own."""
    env = {"TERM": "xterm-256color", **private_home(tmp_path), **env}
    term.start([*CONSOLE, *args], env, unset=tuple(u for u in UNSET if u not in env))
