"""The probe engine against real loopback listeners: ones that speak SSH or
RDP, ones that refuse, ones that never answer, and ones that speak the wrong
thing. No DNS query ever leaves the process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from backend.probe import (
    DNS_FAILED,
    OPEN,
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    ProbeOptions,
    ProbeTarget,
    StaticResolver,
    iter_probes,
    parse_connection_confirm,
    parse_connection_request,
    probe_many,
    probe_one,
    rdp_file_text,
    ssh_command,
    write_rdp_file,
    x224_connection_confirm,
    x224_connection_request,
)

HOST = "127.0.0.1"
SSH_BANNER = b"SSH-2.0-OpenSSH_9.6 Ubuntu-3ubuntu13\r\n"

# MS-RDPBCGR 4.1.1 and 4.1.2: the protocol's own annotated examples.
SPEC_CONNECTION_REQUEST = bytes.fromhex("0300002c27e00000000000" + b"Cookie: mstshash=eltons\r\n".hex() + "0100080000000000")
SPEC_CONNECTION_CONFIRM = bytes.fromhex("030000130ed000001234000200080000000000")


@contextlib.asynccontextmanager
async def listener(handler):
    server = await asyncio.start_server(handler, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def ssh_server(reader, writer):
    writer.write(SSH_BANNER)
    with contextlib.suppress(Exception):
        await writer.drain()
        await reader.read(100)
    writer.close()


async def rdp_server(reader, writer, answer=None):
    try:
        header = await reader.readexactly(4)
        rest = await reader.readexactly(int.from_bytes(header[2:4], "big") - 4)
        assert parse_connection_request(header + rest) is not None
        writer.write(answer or x224_connection_confirm())
        await writer.drain()
    except Exception:
        pass
    writer.close()


async def http_server(reader, writer):
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    with contextlib.suppress(Exception):
        await writer.drain()
    writer.close()


async def mute_server(reader, writer):
    # Accepts, then says nothing (an RDP server waits for the client to speak first).
    with contextlib.suppress(Exception):
        await reader.read(100)
        await asyncio.sleep(5)
    writer.close()


@contextlib.contextmanager
def silent_listener():
    """A listener whose accept queue is full and never accepted: new SYNs are dropped."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    filler = socket.create_connection((HOST, port), timeout=2)
    try:
        yield port
    finally:
        filler.close()
        sock.close()


def free_port() -> int:
    """A port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


FAST = ProbeOptions(timeout=0.4, attempts=1)


async def test_open_refused_and_silent_are_told_apart():
    async with listener(ssh_server) as open_port:
        with silent_listener() as silent_port:
            refused_port = free_port()
            targets = [
                ProbeTarget(HOST, open_port, "ssh", vm="a"),
                ProbeTarget(HOST, refused_port, "ssh", vm="b"),
                ProbeTarget(HOST, silent_port, "ssh", vm="c"),
            ]
            started = time.perf_counter()
            results = await probe_many(targets, ProbeOptions(timeout=0.5, attempts=2))
            elapsed = time.perf_counter() - started
    assert [r.status for r in results] == [OPEN, REFUSED, TIMEOUT]
    assert results[0].latency_ms is not None and results[0].latency_ms < 100
    assert results[1].latency_ms is None and results[1].attempts == 1  # a refusal is an answer: no retry
    assert results[2].attempts == 2 and "no answer within 0.5 s (2 attempts)" in results[2].detail
    # Two silent attempts of 0.5 s each, run alongside the others.
    assert 0.95 <= elapsed < 2.0


async def test_ssh_identification_is_read():
    async with listener(ssh_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "ssh"), FAST)
    assert result.status == OPEN
    assert result.answered == "ssh" and result.protocol_ok
    assert result.banner == "SSH-2.0-OpenSSH_9.6 Ubuntu-3ubuntu13"


async def test_ssh_port_that_answers_something_else():
    async with listener(http_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "ssh"), FAST)
    assert result.status == OPEN and result.protocol_ok is False
    assert result.answered == "other" and "not SSH" in result.detail
    assert result.banner.startswith("HTTP/1.1 400")
    async with listener(mute_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "ssh"), FAST)
    assert result.status == OPEN and result.answered == "silent" and result.protocol_ok is False
    assert "no SSH identification within 0.4 s" in result.detail


def sends(*parts: bytes, then_wait: float = 5.0):
    """A loopback peer that writes `parts` (one write each, a moment apart) and then keeps
    the connection open without a word (or until the client goes)."""

    async def server(reader, writer):
        with contextlib.suppress(Exception):
            for part in parts:
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0.01)
            await asyncio.wait_for(reader.read(100), then_wait)
        writer.close()

    return server


async def ssh_check(*parts: bytes):
    async with listener(sends(*parts)) as port:
        return await probe_one(ProbeTarget(HOST, port, "ssh"), FAST)


async def test_ssh_identification_line_is_at_most_255_bytes_with_its_cr_lf():
    longest = b"SSH-2.0-" + b"x" * (255 - 8 - 2) + b"\r\n"
    assert len(longest) == 255
    ok = await ssh_check(longest)
    assert ok.answered == "ssh" and ok.protocol_ok and ok.banner == longest[:-2].decode()
    one_more = await ssh_check(b"SSH-2.0-" + b"x" * (255 - 8 - 1) + b"\r\n")
    assert one_more.answered == "other" and one_more.protocol_ok is False
    assert "not SSH" in one_more.detail and "255 bytes" in one_more.detail


async def test_an_endless_line_beginning_with_ssh_is_not_working_ssh():
    # It never ends: the verdict comes as soon as it passes 255 bytes, not at the timeout.
    result = await ssh_check(b"SSH-2.0-OpenSSH_9.6 " + b"A" * 4000, b"B" * 60000)
    assert result.answered == "other" and result.protocol_ok is False
    assert "identification line longer than 255 bytes" in result.detail
    assert len(result.banner) <= 255


async def test_a_slow_ssh_server_that_sent_part_of_its_identification_did_not_answer_in_time():
    for partial in (b"S", b"SS", b"SSH-2.0-Open"):
        result = await ssh_check(partial)
        assert result.answered == "silent" and result.protocol_ok is False, partial
        assert "no complete SSH identification within 0.4 s" in result.detail
    # Something that can no longer become one is another service.
    other = await ssh_check(b"SX")
    assert other.answered == "other" and "not SSH" in other.detail


async def test_lines_before_the_identification_are_allowed_within_bounds():
    result = await ssh_check(b"Welcome to the jump host\r\n", b"Authorized use only\r\n", SSH_BANNER)
    assert result.answered == "ssh" and result.banner == "SSH-2.0-OpenSSH_9.6 Ubuntu-3ubuntu13"
    flood = await ssh_check(b"banner line\r\n" * 1100, SSH_BANNER)
    assert flood.answered == "other" and "not SSH" in flood.detail and "before an SSH identification" in flood.detail
    one_long_line = await ssh_check(b"x" * 9000, b"\r\n" + SSH_BANNER)
    assert one_long_line.answered == "other" and "before an SSH identification" in one_long_line.detail


async def test_rdp_connection_confirm_is_verified():
    async with listener(rdp_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "rdp"), FAST)
    assert result.status == OPEN and result.answered == "rdp" and result.protocol_ok
    assert result.banner == "RDP: X.224 Connection Confirm, security CredSSP (NLA)"


async def test_rdp_negotiation_failure_still_is_rdp():
    async def server(reader, writer):
        await rdp_server(reader, writer, x224_connection_confirm(failure=5))

    async with listener(server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "rdp"), FAST)
    assert result.answered == "rdp" and "HYBRID_REQUIRED_BY_SERVER" in result.banner


async def test_rdp_port_that_answers_something_else():
    async with listener(ssh_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "rdp"), FAST)
    assert result.status == OPEN and result.answered == "ssh" and result.protocol_ok is False
    assert result.detail == "the port speaks SSH, not RDP"
    async with listener(http_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "rdp"), FAST)
    assert result.answered == "other" and result.detail.startswith("not RDP: ")
    async with listener(mute_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "rdp"), FAST)
    assert result.answered == "silent" and "no answer to the RDP Connection Request" in result.detail


def test_rdp_wire_format_matches_the_specification_examples():
    request = parse_connection_request(SPEC_CONNECTION_REQUEST)
    assert request is not None and request.cookie == "eltons" and request.requested_protocols == 0
    assert x224_connection_request(0, cookie="eltons") == SPEC_CONNECTION_REQUEST
    ours = parse_connection_request(x224_connection_request())
    assert ours.requested_protocols == 0x3  # TLS | CredSSP
    answer = parse_connection_confirm(SPEC_CONNECTION_CONFIRM)
    assert answer.ok and answer.selected == 0 and "standard RDP security" in answer.detail
    assert x224_connection_confirm(0) == SPEC_CONNECTION_CONFIRM
    assert not parse_connection_confirm(b"SSH-2.0-x\r\n").ok
    assert not parse_connection_confirm(SPEC_CONNECTION_REQUEST).ok  # a request is not a confirm


async def test_names_resolve_through_the_supplied_resolver_only(monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError("a DNS query was attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    resolver = StaticResolver({"web1.westeurope.cloudapp.azure.test": HOST}, system_dns=True)
    async with listener(ssh_server) as port:
        known = await probe_one(ProbeTarget("web1.westeurope.cloudapp.azure.test", port, "ssh"), FAST, resolver)
        unknown = await probe_one(ProbeTarget("gone.westeurope.cloudapp.azure.test", port, "ssh"), FAST, resolver)
    assert known.status == OPEN and known.address == HOST
    assert unknown.status == DNS_FAILED and "does not resolve" in unknown.detail


async def test_dns_failure_from_an_injected_resolver():
    class Broken:
        async def resolve(self, host):
            from backend.probe import DnsError

            raise DnsError(f"{host} does not resolve: SERVFAIL")

    result = await probe_one(ProbeTarget("db1.corp.example.com", 22, "ssh"), FAST, Broken())
    assert result.status == DNS_FAILED and result.detail.endswith("SERVFAIL")


async def test_loopback_only_sessions_never_send_elsewhere():
    result = await probe_one(ProbeTarget("10.1.0.4", 22, "ssh"), ProbeOptions(timeout=0.3, attempts=1, loopback_only=True))
    assert result.status == UNREACHABLE and "not probed" in result.detail


async def test_unreachable_network():
    # The kernel refuses a TCP connect to the broadcast address without sending anything.
    result = await probe_one(ProbeTarget("255.255.255.255", 22, "ssh"), FAST)
    assert result.status == UNREACHABLE and "unreachable" in result.detail


async def test_port_map_reaches_the_effective_port():
    async with listener(ssh_server) as port:
        options = ProbeOptions(timeout=0.4, attempts=1, port_map=lambda address, p: port if p == 22 else p)
        result = await probe_one(ProbeTarget(HOST, 22, "ssh"), options)
    assert result.status == OPEN and result.connect_port == port and result.to_json()["port"] == 22


async def test_latency_is_the_median_of_attempts():
    async with listener(ssh_server) as port:
        result = await probe_one(ProbeTarget(HOST, port, "ssh"), ProbeOptions(timeout=0.5, attempts=3))
    assert len(result.samples_ms) == 3
    assert result.latency_ms == sorted(result.samples_ms)[1]


async def test_silent_endpoints_take_ceil_n_over_concurrency_timeouts():
    with contextlib.ExitStack() as stack:
        ports = [stack.enter_context(silent_listener()) for _ in range(8)]
        started = time.perf_counter()
        results = await probe_many([ProbeTarget(HOST, p) for p in ports], ProbeOptions(timeout=0.25, attempts=1, concurrency=4))
        elapsed = time.perf_counter() - started
    assert {r.status for r in results} == {TIMEOUT}
    assert 0.45 <= elapsed < 0.9  # two waves of 0.25 s


async def test_results_arrive_as_they_finish():
    async with listener(ssh_server) as open_port:
        with silent_listener() as silent_port:
            order = []
            async for result in iter_probes(
                [ProbeTarget(HOST, silent_port, "ssh"), ProbeTarget(HOST, open_port, "ssh")], ProbeOptions(timeout=0.4, attempts=1)
            ):
                order.append(result.status)
    assert order == [OPEN, TIMEOUT]


def test_bad_options_are_one_sentence():
    with pytest.raises(ValueError, match="--timeout must be between"):
        ProbeOptions(timeout=0).validate()
    with pytest.raises(ValueError, match="--concurrency must be between"):
        ProbeOptions(concurrency=0).validate()


def test_connection_lines(tmp_path):
    assert ssh_command("127.0.2.9", 22, "azureuser") == "ssh azureuser@127.0.2.9"
    assert ssh_command("127.0.2.9", 10022, "azureuser") == "ssh -p 10022 azureuser@127.0.2.9"
    text = rdp_file_text("127.0.2.7", 3389, "ops")
    assert text.startswith("full address:s:127.0.2.7\r\n") and "username:s:ops\r\n" in text
    assert "password" not in text.lower()
    path = write_rdp_file(tmp_path, "win/01", "127.0.2.7", 50001)
    assert path.name == "win_01.rdp"
    assert path.read_text().splitlines()[0] == "full address:s:127.0.2.7:50001"
    assert [p.name for p in tmp_path.iterdir()] == ["win_01.rdp"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError):
        write_rdp_file(tmp_path / "missing", "vm", "127.0.2.7")


# --- `aztriage probe` as a script uses it ---------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUICK_CLI = ("--timeout", "0.3", "--attempts", "1")


def aztriage(*args: str, data_home: Path | None = None) -> subprocess.CompletedProcess:
    # As the installed `aztriage` entry point runs it (tui.cli:main). data_home: a data
    # directory of its own (last-known addresses), apart from the run's shared test home.
    code = "import sys; from tui.cli import main; sys.exit(main(sys.argv[1:]))"
    env = os.environ.copy() if data_home is None else {**os.environ, "XDG_DATA_HOME": str(data_home)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_cli_json_shape_and_exit_status(tmp_path):
    # Its own last-known addresses: another test's probe of the demo must not make web-prod-01's IP look changed.
    proc = aztriage("probe", "--demo", "--vm", "jump-prod-01", "web-prod-01", "--format", "json", *QUICK_CLI, data_home=tmp_path)
    assert proc.returncode == 3, proc.stderr  # not every port answers
    doc = json.loads(proc.stdout)
    assert {"results", "diagnoses"} <= set(doc)
    for r in doc["results"]:
        assert {"vm", "host", "port", "protocol", "status", "latency_ms", "banner"} <= set(r)
    web = next(r for r in doc["results"] if r["vm"] == "web-prod-01" and r["host"].startswith("127."))
    assert (web["port"], web["protocol"], web["status"]) == (22, "ssh", "open") and web["banner"].startswith("SSH-2.0-OpenSSH_9.6")
    diagnoses = {d["vm"]: d for d in doc["diagnoses"]}
    for d in diagnoses.values():
        assert {"vm", "port", "verdict", "evidence", "recommended_scenario"} <= set(d)
    assert diagnoses["jump-prod-01"]["verdict"] == "blocked-by-nsg" and diagnoses["jump-prod-01"]["recommended_scenario"] == "fix-nsg"
    assert diagnoses["web-prod-01"]["verdict"] == "reachable"
    assert any(line.startswith("ssh -p ") for line in diagnoses["web-prod-01"]["connect"])

    ok = aztriage("probe", "--demo", "--vm", "web-prod-02", "--format", "json", *QUICK_CLI)
    assert ok.returncode == 0, ok.stderr


def test_cli_writes_rdp_files_and_a_table_that_fits(tmp_path):
    proc = aztriage("probe", "--demo", "--vm", "dc-shared-01", "legacy-ftp-01", "--rdp-file", str(tmp_path), "--width", "80", *QUICK_CLI)
    assert proc.returncode == 3, proc.stderr
    # Everything but the file path fits 80 columns.
    assert [line for line in proc.stdout.splitlines() if len(line) > 80 and not line.startswith("wrote ")] == []
    # By the VM's DNS name, not its address: the next address change does not make them stale.
    assert "reset-access" in proc.stdout and "mstsc /v:dc-shared-01.westeurope.cloudapp.azure.test" in proc.stdout
    rdp = tmp_path / "dc-shared-01.rdp"
    # 3389 (or the port the emulator fell back to when another held it), by name; readable only by the user.
    assert rdp.read_text().splitlines()[0].startswith("full address:s:dc-shared-01.westeurope.cloudapp.azure.test")
    assert rdp.stat().st_mode & 0o777 == 0o600
    assert f"wrote {rdp}" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["dc-shared-01.rdp"]  # only VMs whose RDP answers


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--vm", "no-such-vm"), "no VM named 'no-such-vm'"),
        (("--source-ip", "my-laptop"), "--source-ip: source 'my-laptop' is neither an IP address"),
        (("--timeout", "0"), "--timeout must be more than 0"),
        (("--rdp-file", "/nonexistent/dir"), "--rdp-file /nonexistent/dir is not a directory"),
        (("--vm", "a", "--all"), "not allowed with argument"),
    ],
)
def test_cli_bad_input_is_one_line(args, needle):
    one_line_error(aztriage("probe", "--demo", *args), needle)


def test_the_connect_host_is_the_name_azure_gives_else_the_address():
    from backend.probe import OPEN, ProbeResult, ProbeTarget, connect_host

    vm_id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
    by_ip = ProbeResult(ProbeTarget("203.0.113.7", 3389, "rdp", "v", vm_id, "public-ip", via="v-ip"), OPEN, address="203.0.113.7")
    by_name = ProbeResult(ProbeTarget("v.westeurope.cloudapp.azure.com", 3389, "rdp", "v", vm_id, "fqdn", via="v-ip"), OPEN, address="203.0.113.7")
    other_ip = ProbeResult(ProbeTarget("v2.westeurope.cloudapp.azure.com", 3389, "rdp", "v", vm_id, "fqdn", via="another-ip"), OPEN)
    assert connect_host(by_ip, [by_ip, by_name]) == "v.westeurope.cloudapp.azure.com"
    assert connect_host(by_name, [by_name]) == "v.westeurope.cloudapp.azure.com"
    assert connect_host(by_ip, [by_ip, other_ip]) == "203.0.113.7"  # a name of another public IP is not this one's
    assert connect_host(by_ip, [by_ip]) == "203.0.113.7"
