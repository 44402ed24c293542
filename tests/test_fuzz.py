"""Bad input, generated: estate files, config files, command lines, NSG prefixes
and port ranges, resource ids, VM names. Whatever comes in, the answer is one
clear error (or a result), never a traceback, and nothing is half-written."""

from __future__ import annotations

import copy
import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from backend.config import KNOWN_KEYS, ConfigError, load_config
from backend.emulator.estates import EstateError, load_estate
from backend.models import NetworkSecurityGroup, ResourceId, SecurityRule
from tests.support import FIXED_NOW

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
weird_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
) | st.sampled_from(["", " ", "-", "--", "..", "/", "\\", "ü" * 300, "a" * 5000, "💥" * 64, "$(id)", "../../etc/passwd", "%s%n", "\u202e"])


def one_sentence(message: str) -> None:
    assert message and message.strip()
    assert "\n" not in message.strip(), message
    assert "Traceback" not in message


# --- the estate loader ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_estate() -> dict:
    return json.loads(json.dumps(load_estate("demo", now=FIXED_NOW), default=str))


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            yield from _paths(v, prefix + (i,))


@FEW
@given(data=st.data())
def test_a_mutated_estate_file_loads_or_is_refused_in_one_sentence(demo_estate, tmp_path_factory, data):
    doc = copy.deepcopy(demo_estate)
    paths = [p for p in _paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    target = tmp_path_factory.mktemp("estate") / "estate.json"
    target.write_text(json.dumps(doc))
    try:
        load_estate(str(target), now=FIXED_NOW)
    except EstateError as exc:
        one_sentence(str(exc))


@FUZZ
@given(doc=json_values | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_a_generated_estate_file_is_refused_in_one_sentence(tmp_path_factory, doc):
    target = tmp_path_factory.mktemp("estate") / "estate.json"
    target.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    try:
        load_estate(str(target), now=FIXED_NOW)
    except EstateError as exc:
        one_sentence(str(exc))


# --- the config loader ---------------------------------------------------------------------------


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if abs(v) < 2**63 else "9223372036854775807"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None and not isinstance(x, dict)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    return '""'


@FUZZ
@given(
    values=st.dictionaries(st.sampled_from(list(KNOWN_KEYS)) | st.text(string.ascii_lowercase + "_", min_size=1, max_size=12), json_values, max_size=5),
    junk=st.one_of(st.just(""), st.text(max_size=60)),
)
def test_a_generated_config_file_loads_or_is_refused_in_one_sentence(tmp_path_factory, values, junk):
    body = "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None) + "\n" + junk
    target = tmp_path_factory.mktemp("config") / "config.toml"
    target.write_text(body, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(target, environ={})
    except ConfigError as exc:
        one_sentence(str(exc))


@FUZZ
@given(env=st.dictionaries(st.sampled_from([f"AZTRIAGE_{k.upper()}" for k in KNOWN_KEYS]), st.text(max_size=40).filter(lambda s: "\x00" not in s), max_size=3))
def test_generated_environment_settings_load_or_are_refused_in_one_sentence(env):
    try:
        load_config("/nonexistent/aztriage/config.toml", environ=env)
    except ConfigError as exc:
        one_sentence(str(exc))


# --- NSG prefixes, port ranges, sources ------------------------------------------------------------

prefixes = st.lists(
    st.sampled_from(
        [
            "*",
            "Internet",
            "VirtualNetwork",
            "AzureLoadBalancer",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::/0",
            "1.2.3.4",
            "1.2.3.4/33",
            "300.1.1.1",
            "fe80::1/64",
            "Storage.WestEurope",
            "",
            "  ",
        ]
    )
    | weird_text,
    min_size=0,
    max_size=4,
).map(tuple)
ports = st.lists(
    st.sampled_from(["*", "22", "3389", "0-65535", "22-21", "-1", "65536", "1-", "-", "80-443", "99999999999999999999", "٣٣٨٩", "²²"]) | weird_text,
    min_size=0,
    max_size=4,
).map(tuple)


@FUZZ
@given(
    src=prefixes,
    dst=prefixes,
    dports=ports,
    sports=ports,
    protocol=st.sampled_from(["Tcp", "Udp", "*", "Icmp", "tcp", ""]) | weird_text,
    access=st.sampled_from(["Allow", "Deny", ""]) | weird_text,
    port=st.integers(0, 65535),
    source=st.sampled_from(["Internet", "VirtualNetwork", "203.0.113.9", "10.1.2.3", "::1"]),
)
def test_nsg_rules_with_generated_prefixes_and_ports_give_a_verdict(src, dst, dports, sports, protocol, access, port, source):
    import ipaddress

    from backend.network import Flow, Source, evaluate_nsg, parse_port_ranges

    ranges = parse_port_ranges(dports)
    assert ranges is None or all(isinstance(lo, int) and lo <= hi for lo, hi in ranges)
    rule = SecurityRule("fuzz", 100, "Inbound", access, protocol, src, sports, dst, dports)
    nsg = NetworkSecurityGroup("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n", "n", "westeurope", (rule,))
    flow = Flow(Source.parse(source), ipaddress.ip_address("10.0.0.4"), port)
    decision = evaluate_nsg(nsg, flow, "nic")
    assert decision is not None


@FUZZ
@given(text=weird_text)
def test_a_generated_source_parses_or_is_refused_in_one_sentence(text):
    from backend.network import Source

    try:
        Source.parse(text)
    except ValueError as exc:
        one_sentence(str(exc))


# --- resource ids ---------------------------------------------------------------------------------

segments = (
    st.sampled_from(["subscriptions", "resourceGroups", "providers", "Microsoft.Compute", "virtualMachines", "vm1", "", "SUBSCRIPTIONS", "..", " "])
    | weird_text
)


@FUZZ
@given(parts=st.lists(segments, max_size=10), lead=st.sampled_from(["", "/", "//"]))
def test_a_generated_resource_id_parses_or_is_refused_in_one_sentence(parts, lead):
    text = lead + "/".join(parts)
    try:
        rid = ResourceId.parse(text)
    except ValueError as exc:
        one_sentence(str(exc))
        return
    assert isinstance(rid.subscription_id, str) and rid.subscription_id


@FUZZ
@given(text=st.none() | weird_text)
def test_resource_id_parse_never_raises_anything_but_value_error(text):
    try:
        ResourceId.parse(text)  # type: ignore[arg-type]
    except ValueError:
        pass


def _id_reading(read, text):
    try:
        return read(text)
    except ValueError as exc:
        return str(exc)


# Names that are the id's own keywords, in any case, where the quick reading must not be fooled.
id_segments = (
    st.sampled_from(["subscriptions", "SUBSCRIPTIONS", "resourceGroups", "resourcegroups", "Providers", "providers", "vm1", "rg-1", "", " "]) | weird_text
)


@settings(max_examples=400, deadline=None)
@given(
    parts=st.tuples(
        st.sampled_from(["subscriptions", "SUBSCRIPTIONS", "resourceGroups"]),
        id_segments,
        st.sampled_from(["resourceGroups", "resourcegroups", "providers"]),
        id_segments,
        st.sampled_from(["providers", "PROVIDERS", "subscriptions"]),
        id_segments,
        id_segments,
        id_segments,
    ),
    lead=st.sampled_from(["/", "", "//"]),
)
@example(parts=("subscriptions", "resourceGroups", "resourceGroups", "rg", "providers", "P", "T", "N"), lead="/")
@example(parts=("subscriptions", "s", "resourceGroups", "PROVIDERS", "providers", "P", "T", "N"), lead="/")
def test_the_quick_reading_of_a_resource_id_gives_what_the_general_one_gives(parts, lead):
    """ResourceId.parse reads /subscriptions/S/resourceGroups/G/providers/P/T/N without the
    general reading's work; for any id of about that shape (a keyword for a name, an empty or
    hostile segment, another case) it gives the same parts, or the same refusal."""
    text = lead + "/".join(parts)
    assert _id_reading(ResourceId.parse, text) == _id_reading(ResourceId.read_any, text)


# --- the command line -------------------------------------------------------------------------------


@pytest.fixture
def private_dirs(tmp_path, monkeypatch):
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("AZTRIAGE_CONFIG", raising=False)
    return tmp_path


def _written(home: Path, *, journal: bool = True) -> list[Path]:
    # The log (state/aztriage/log) is where a failure is explained; nothing else may appear.
    # `recover` opens (creates) its journal before it looks for the VM, so a refused recover
    # leaves an empty journal behind: allowed here (journal=False), reported as a finding.
    return [p for p in home.rglob("*") if p.is_file() and p.name != "aztriage.log" and (journal or not p.name.startswith("journal.sqlite3"))]


COMMANDS = ["inventory", "health", "probe", "check", "report", "recover", "runs", "bootlog"]
OPTIONS = [
    "--vm",
    "--scenario",
    "--subscription",
    "--format",
    "--size",
    "--resume",
    "--confirm",
    "--username",
    "--ssh-key",
    "--output",
    "--abandon",
    "--port",
    "--source",
    "--cloud",
    "--auth",
    "--dry-run",
    "--read-only",
    "--no-probe",
    "--demo-estate",
    "-o",
]
argv_tokens = st.sampled_from(OPTIONS) | weird_text.filter(lambda s: not s.startswith("--demo") and s not in ("--yes", "-y"))


@FEW
@given(command=st.sampled_from(COMMANDS), rest=st.lists(argv_tokens, max_size=6))
def test_generated_command_lines_give_an_exit_code_and_never_a_traceback(emu, private_dirs, capsys, command, rest):
    from tui.cli import main

    assume("--demo" not in rest and "--yes" not in rest and "--release" not in rest)
    before = set(_written(private_dirs))
    argv = [command, *rest, "--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--auth", "none"]
    try:
        code = main(argv)
    except SystemExit as exc:  # --help
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    assert isinstance(code, int)
    # The product's own mark of a bug (not the same words echoed from a generated argument).
    assert "Traceback" not in err and not err.startswith("aztriage: unexpected error:"), err
    if code != 0:
        assert (err + out).strip(), "a failure must say why"  # a probe that finds ports closed reports on stdout
    if code == 2:  # bad input (exit 1 is a finding, e.g. a probe that found a port closed)
        assert set(_written(private_dirs)) == before, "a refused command wrote a file"
    # Nothing but an output file the operator named may appear outside the journal's dir.
    for path in set(_written(private_dirs)) - before:
        assert path.name.startswith("journal") or path.suffix in (".lock",) or path.name == "last-known-endpoints.json" or "report" in str(path), path


vm_names = st.sampled_from(
    [
        "ü" * 300,
        "a" * 5000,
        "💥",
        "web-prod-01\n",
        "web prod",
        "-rf",
        "名前",
        "\u202eevil",
        "web-prod-0%",
        "*",
        "/subscriptions/",
        "/subscriptions/x/resourceGroups",
    ]
) | weird_text.filter(lambda s: s.strip() and not s.startswith("-"))


@FEW
@given(name=vm_names, where=st.sampled_from(["inventory-subscription", "recover-vm"]))
def test_unicode_and_huge_vm_names_and_subscriptions_get_one_clear_line(emu, private_dirs, capsys, name, where):
    from tui.cli import main

    assume(name.strip() and name.strip() not in ("web-prod-01",) and not name.startswith("-"))
    conn = ["--arm-endpoint", emu.endpoint, "--ca-file", emu.ca_file, "--auth", "none"]
    before = set(_written(private_dirs, journal=False))
    if where == "inventory-subscription":
        code = main(["inventory", "--subscription", name, *conn])
    else:
        code = main(["recover", "--vm", name, "--scenario", "restart", "--dry-run", *conn])
    out, err = capsys.readouterr()
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "unexpected error" not in err
    assert len(lines[0]) < 400 or name[:50] in lines[0]
    assert set(_written(private_dirs, journal=False)) == before


@pytest.mark.parametrize("args", [["inventory", "--demo", "--subscription", "ü" * 300], ["recover", "--demo", "--vm", "💥" * 64, "--scenario", "restart"]])
def test_demo_mode_refuses_an_unknown_vm_or_subscription_in_one_line(private_dirs, capsys, args):
    from tui.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "unexpected error" not in err
    assert not [p for p in _written(private_dirs, journal=False) if "data" in p.parts]
