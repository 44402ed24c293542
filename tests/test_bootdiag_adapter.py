"""Boot diagnostics end to end: the real adapter asks the emulator for SAS
URLs (retrieveBootDiagnosticsData), reads the two blobs over HTTPS, refetches
expired URLs, and enabling boot diagnostics goes through the recovery rails
(read-only: nothing is sent)."""

from __future__ import annotations

import io
from urllib.parse import urlparse

import pytest
from PIL import Image

from backend import bootdiag, connectivity
from backend.adapter import BackendError
from backend.azure import bootdiag as boot_ops
from backend.azure.backend import AzureBackend
from backend.diagnose import GUEST_NOT_ANSWERING
from backend.recovery import scenarios, service
from backend.recovery.journal import Journal
from backend.recovery.runner import Runner, RunRefused
from tests.support import demo_settings, emulator_control

pytestmark = pytest.mark.xdist_group("bootdiag")


@pytest.fixture
def backend(reset_backend):  # the adapter on this module's own, reset emulator (tests/rescue_fixtures.py)
    return reset_backend


async def vm_of(backend, name):
    return (await service.read_vm(backend, await service.find_vm(backend, name))).vm


def stats(emu):
    return emulator_control(emu, "GET", "/_emulator/stats")


def retrievals(emu) -> int:
    return sum(n for route, n in stats(emu)["by_route"].items() if route.endswith("/retrieveBootDiagnosticsData"))


async def test_serial_log_and_screenshot_of_a_vm_in_emergency_mode(backend, emu):
    vm = await vm_of(backend, "api-dev-01")
    before = stats(emu)["writes"]
    data = await boot_ops.for_vm(backend, vm)
    assert data.serial_error is None and data.screenshot_error is None
    assert data.storage == "managed storage"
    assert "\x00" not in data.serial_log, "page-blob padding is not text"
    assert "You are in emergency mode" in data.serial_log
    verdict = bootdiag.analyze(data.serial_log, vm.os_type)
    assert verdict.primary.id == "emergency-mode" and verdict.booted is False
    image = bootdiag.screenshot_image(data.screenshot)
    assert image.size == (640, 400)
    assert image.getpixel((0, 0)) == (0, 0, 0), "a Linux text console"
    # Retrieving boot diagnostics reads; it is not a change.
    assert stats(emu)["writes"] == before


async def test_windows_stop_code_screenshot_is_a_blue_screen(backend):
    vm = await vm_of(backend, "iis-test-01")
    data = await boot_ops.for_vm(backend, vm)
    image = bootdiag.screenshot_image(data.screenshot)
    assert image.getpixel((5, 5)) == (0, 120, 215)
    assert bootdiag.analyze(data.serial_log, "Windows").primary.facts["code"] == "INACCESSIBLE_BOOT_DEVICE"


async def test_customer_storage_account(backend):
    vm = await vm_of(backend, "legacy-app-01")
    assert vm.boot_diagnostics.storage_uri == "https://contosolegacydiag.blob.core.windows.net/"
    data = await boot_ops.for_vm(backend, vm)
    assert data.storage == "storage account contosolegacydiag"
    assert data.serial_log and "SAC>" in data.serial_log
    uris = boot_ops._cache(backend)[vm.id.lower()]
    for url in (uris.serial_log, uris.screenshot):
        parsed = urlparse(url)
        assert parsed.hostname == "127.0.0.1", "the emulator never sends the adapter off loopback"
        assert "/contosolegacydiag/" in parsed.path
    assert Image.open(io.BytesIO(data.screenshot)).format == "BMP"


async def test_boot_diagnostics_off_says_so_in_one_sentence(backend, emu):
    vm = await vm_of(backend, "dev-spot-01")
    with pytest.raises(boot_ops.BootDiagnosticsOff) as info:
        await boot_ops.for_vm(backend, vm)
    assert "boot diagnostics are off on VM dev-spot-01" in str(info.value) and "\n" not in str(info.value)
    # The same from ARM itself (409), when the model was not at hand.
    with pytest.raises(boot_ops.BootDiagnosticsOff):
        await boot_ops.fetch(backend, vm.id)


async def test_expired_sas_urls_are_fetched_again(backend, emu):
    vm = await vm_of(backend, "pg-dev-01")
    first = await boot_ops.for_vm(backend, vm)
    assert first.sas_fetches == 1 and retrievals(emu) == 1
    again = await boot_ops.for_vm(backend, vm, screenshot=False)
    assert again.sas_fetches == 0, "fresh URLs are used again"
    assert retrievals(emu) == 1
    counters = emulator_control(emu, "GET", "/_emulator/bootdiag")
    # Two hours later (on the emulator's clock) the cached URLs are past their se=.
    emulator_control(emu, "POST", "/_emulator/advance", {"seconds": 2 * 3600})
    later = await boot_ops.for_vm(backend, vm)
    assert later.serial_error is None and later.screenshot_error is None
    assert later.serial_log == first.serial_log and later.screenshot
    assert later.sas_fetches == 1 and retrievals(emu) == 2
    after = emulator_control(emu, "GET", "/_emulator/bootdiag")
    assert after["expired"] >= counters["expired"] + 1, "Blob Storage refused the expired URL first"


async def test_urls_stay_out_of_errors(backend, emu):
    vm = await vm_of(backend, "web-prod-01")
    await boot_ops.for_vm(backend, vm)
    uris = boot_ops._cache(backend)[vm.id.lower()]
    tampered = boot_ops.SasUris(uris.serial_log.replace("sig=", "sig=x"), uris.screenshot.replace("sig=", "sig=x"), uris.expires_at, uris.fetched_at)
    boot_ops._cache(backend)[vm.id.lower()] = tampered
    data = await boot_ops.for_vm(backend, vm)  # refused once, then new URLs
    assert data.serial_log and data.sas_fetches == 1
    with pytest.raises(boot_ops._BlobError) as info:
        await boot_ops._get_blob(backend, tampered.serial_log)
    assert "sig=" not in str(info.value) and "AuthenticationFailed" in str(info.value)


async def test_a_blob_url_off_loopback_is_never_read(backend):
    with pytest.raises(boot_ops._BlobError, match="not read"):
        await boot_ops._get_blob(backend, "https://contosolegacydiag.blob.core.windows.net/c/b.log?sig=x")
    with pytest.raises(boot_ops._BlobError, match="not HTTPS"):
        await boot_ops._get_blob(backend, "http://127.0.0.1:1/c/b.log")
    with pytest.raises(boot_ops._BlobError, match=r"cannot read https://127\.0\.0\.1:1/c/b\.log") as info:
        await boot_ops._get_blob(backend, "https://127.0.0.1:1/c/b.log?sv=2022-11-02&sig=SECRET")
    assert "SECRET" not in str(info.value)


async def test_after_a_repair_the_log_shows_a_clean_boot(backend, emu):
    vm = await vm_of(backend, "api-dev-01")
    assert bootdiag.analyze((await boot_ops.for_vm(backend, vm)).serial_log).booted is False
    # The rescue repair's effect in the emulator: the guest boots again.
    emu.call(lambda: emu.store.own_guest(vm.id).update(boot="ok"))
    data = await boot_ops.for_vm(backend, vm)
    verdict = bootdiag.analyze(data.serial_log, "Linux")
    assert verdict.booted is True and verdict.findings == ()
    assert verdict.boot_count == 2 and "emergency mode" in data.serial_log, "the failed boot is still in the log, before the clean one"
    assert bootdiag.screenshot_image(data.screenshot).size == (640, 400)


async def test_enable_boot_diagnostics_respects_read_only(emu, tmp_path):
    emulator_control(emu, "POST", "/_emulator/reset")
    backend = AzureBackend(demo_settings(emu, read_only=True), retry_total=1)
    try:
        vm = await vm_of(backend, "dev-spot-01")
        before = stats(emu)["writes"]
        with pytest.raises(BackendError) as info:
            await boot_ops.enable(backend, vm.id)
        assert info.value.code == "ReadOnly"
        plan, facts = await service.make_plan(backend, vm.id, "enable-boot-diagnostics")
        assert plan.to_json(read_only=True)["steps"][1]["disabled"] is True
        with pytest.raises(RunRefused, match="read-only"):
            await Runner(backend, Journal(tmp_path / "j.sqlite3")).start(plan, lambda f, p: scenarios.build_plan("enable-boot-diagnostics", f, p), facts)
        # Reading boot diagnostics of another VM is still allowed, and still no write.
        await boot_ops.for_vm(backend, await vm_of(backend, "web-prod-01"), screenshot=False)
        assert stats(emu)["writes"] == before == 0
    finally:
        await backend.close()


async def test_enable_boot_diagnostics_scenario_then_the_next_start_is_captured(backend, emu, tmp_path):
    vm = await vm_of(backend, "dev-spot-01")
    assert scenarios.get("enable-boot-diagnostics").unavailable(vm) is None
    plan, facts = await service.make_plan(backend, vm.id, "enable-boot-diagnostics")
    assert plan.keys == ["preflight", "enable-boot-diagnostics"]
    assert not plan.destructive and plan.writes
    assert any("appear once it starts" in w for w in plan.warnings)
    result = await Runner(backend, Journal(tmp_path / "j.sqlite3")).start(plan, lambda f, p: scenarios.build_plan("enable-boot-diagnostics", f, p), facts)
    assert result.status == "succeeded", result.summary
    enabled = await vm_of(backend, "dev-spot-01")
    assert enabled.boot_diagnostics.enabled and enabled.boot_diagnostics.managed_storage
    assert scenarios.get("enable-boot-diagnostics").unavailable(enabled) == "boot diagnostics are already on (managed storage)"
    # Enabled, but nothing captured until the VM boots.
    empty = await boot_ops.for_vm(backend, enabled)
    assert empty.serial_log is None and "does not exist yet" in empty.serial_error
    await backend.vm_action(vm.id, "start")
    booted = await boot_ops.for_vm(backend, enabled)
    assert booted.serial_error is None and bootdiag.analyze(booted.serial_log).booted is True


async def test_connectivity_diagnosis_recommends_rescue_with_the_repair_commands(backend, emu, tmp_path):
    from backend.lastknown import LastKnownStore

    inventory = await backend.inventory()
    vms = connectivity.choose_vms(inventory, ["api-dev-01", "files-shared-01"])
    env = await connectivity.environment(backend.settings, inventory)
    report = await connectivity.run(
        backend, inventory, vms, connectivity.Request(timeout=0.3, attempts=1), env=env, store=LastKnownStore(tmp_path / "lk.json", scope="t")
    )
    by_vm = {d.vm: d for d in report.diagnoses}
    api = by_vm["api-dev-01"]
    assert (api.verdict, api.recommended_scenario) == (GUEST_NOT_ANSWERING, "rescue")
    assert api.summary == "the OS did not boot: emergency mode (fstab)"
    assert any("not a network or firewall problem" in line for line in api.evidence)
    assert any(line.startswith("repair on the rescue VM: sed -i") and "/rescue/etc/fstab" in line for line in api.evidence)
    # A guest that booted and still drops RDP: the firewall, and the serial log says the OS is up.
    files = by_vm["files-shared-01"]
    assert files.recommended_scenario == "run-fix"
    assert any("boot diagnostics: the last boot reached the login prompt" in line for line in files.evidence)
