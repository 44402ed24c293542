"""The command palette (ctrl+p): namespaced commands ("view: …", "vm: …",
"export: …", "app: …") from the app and the current screen, plus a jump to
any VM by name ("vm: open <name>")."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content


def tenant_search_text(query: str) -> str | None:
    """The name, IP or id in what was typed ("web-01", "vm: open web-01", "find 10.0.0.4"), when it is one."""
    from backend.search import SearchError, classify

    text = query.strip()
    for prefix in ("vm: open ", "vm: find ", "open ", "find "):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    if text.lower().endswith(" in the tenant"):
        text = text[: -len(" in the tenant")].strip()
    try:
        classify(text)
    except SearchError:
        return None
    return text


async def find_and_open(app: Any, text: str) -> None:
    """Find a VM anywhere in the tenant and open it (several: the Inventory, filtered to them)."""
    from backend.errors import BackendError
    from backend.safetext import safe_line

    app.notify(f"Searching the tenant for {safe_line(text)}…", timeout=3)
    try:
        vms = await app.find_in_tenant(text)
    except BackendError as exc:
        app.notify(f"The tenant search failed: {exc}", severity="error", timeout=8)
        return
    if not vms:
        app.notify(f"No VM matches {safe_line(text)} in the subscriptions Resource Graph searched.", severity="warning", timeout=6)
        return
    from tui.screens.vm_detail import VmDetailScreen

    if len(vms) == 1:
        app.push_screen(VmDetailScreen(vms[0].id))
        return
    await app.switch_mode("inventory")
    app.screen.set_filter(text)


# Fuzzy-matching every VM of a 10k estate on each keystroke would lag; jumps start after 2 characters.
VM_JUMP_MIN_QUERY = 2
VM_JUMP_LIMIT = 5000


class AztriageCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Any]]:
        app: Any = self.app
        screen: Any = self.screen
        commands: list[tuple[str, str, Any]] = []
        if hasattr(screen, "palette_commands"):
            commands += screen.palette_commands()
        if hasattr(app, "palette_commands"):
            commands += app.palette_commands()
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
        inventory = getattr(self.app, "inventory", None)
        if inventory is None or len(query.strip()) < VM_JUMP_MIN_QUERY:
            return
        for vm in inventory.vms[:VM_JUMP_LIMIT]:
            name = f"vm: open {vm.name}"
            score = matcher.match(name)
            if score > 0:
                yield Hit(
                    score * 0.9,
                    matcher.highlight(name),
                    partial(self._open_vm, vm.id),
                    text=name,
                    help=f"{vm.resource_group} · {vm.location} · {vm.power_state}",
                )
        wanted = tenant_search_text(query)
        if wanted is not None and getattr(self.app, "backend", None) is not None:
            # One Resource Graph query when chosen (never per keystroke): VMs not loaded are found too.
            name = f"vm: find {wanted} in the tenant"
            # Below the loaded VMs' jumps unless what was typed is this command itself.
            yield Hit(
                matcher.match(name) * 0.8 or 0.2,
                Content(name),
                partial(self._find, wanted),
                text=name,
                help="Search every subscription by name, IP address or id (Azure Resource Graph) and open it",
            )

    def _find(self, text: str) -> None:
        self.app.run_worker(find_and_open(self.app, text), group="tenant-find", exclusive=True, exit_on_error=False)

    def _open_vm(self, vm_id: str) -> None:
        from tui.screens.vm_detail import VmDetailScreen

        self.app.push_screen(VmDetailScreen(vm_id))
