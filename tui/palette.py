"""The command palette (ctrl+p): namespaced commands ("view: …", "vm: …",
"export: …", "app: …") from the app and the current screen, plus a jump to
any VM by name ("vm: open <name>")."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

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
                yield Hit(score * 0.9, matcher.highlight(name), partial(self._open_vm, vm.id), text=name, help=f"{vm.resource_group} · {vm.location} · {vm.power_state}")

    def _open_vm(self, vm_id: str) -> None:
        from tui.screens.vm_detail import VmDetailScreen

        self.app.push_screen(VmDetailScreen(vm_id))
