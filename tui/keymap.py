"""Every key binding of the console, found by walking the screen and widget
modules, and the effective map once the config's [keys] overrides (binding
id = key(s)) are applied. `aztriage keys` prints it; the app checks the
config's ids against it before the screen opens.

Importing this imports Textual and the screen modules, never the Azure SDK.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Packages whose modules declare bindings (tui.app is added by name).
BINDING_PACKAGES = ("tui.screens", "widgets")
# Words read better than symbols in a printed table.
KEY_WORDS = {"enter": "enter", "up": "up", "down": "down", "left": "left", "right": "right"}


@dataclass(frozen=True)
class KeyEntry:
    binding_id: str
    keys: tuple[str, ...]  # key names as Textual knows them ("slash", "ctrl+p")
    description: str
    where: str
    source: str  # "default" or "config"
    owner: str  # the class that declares it

    @property
    def display(self) -> str:
        return " ".join(display_key(k) for k in self.keys)

    def to_json(self) -> dict[str, Any]:
        return {
            "binding_id": self.binding_id,
            "keys": list(self.keys),
            "display": self.display,
            "description": self.description,
            "where": self.where,
            "source": self.source,
            "class": self.owner,
        }


def display_key(key: str) -> str:
    from textual.keys import format_key

    modifiers, _, name = key.rpartition("+")
    shown = KEY_WORDS.get(name) or format_key(name)
    return f"{modifiers}+{shown}" if modifiers else shown


def _modules() -> Iterator[Any]:
    yield importlib.import_module("tui.app")
    for package_name in BINDING_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            yield importlib.import_module(f"{package_name}.{info.name}")


def binding_classes() -> list[type]:
    """Every class in the console's modules that declares its own BINDINGS, in a stable order."""
    from textual.dom import DOMNode

    found: dict[str, type] = {}
    for module in _modules():
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, DOMNode) and obj.__module__ == module.__name__ and "BINDINGS" in obj.__dict__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found, key=_class_order)]


def _class_order(qualified: str) -> tuple[int, str]:
    # The app's own keys first, then screens, then widgets.
    if qualified.startswith("tui.app."):
        return (0, qualified)
    if qualified.startswith("tui.screens."):
        return (1, qualified)
    return (2, qualified)


def where_of(cls: type) -> str:
    from tui.screens.help import PLACES

    if cls.__name__ in PLACES:
        return PLACES[cls.__name__]
    # "ConfirmDialog" -> "confirm dialog"
    words, word = [], ""
    for ch in cls.__name__:
        if ch.isupper() and word:
            words.append(word)
            word = ""
        word += ch.lower()
    words.append(word)
    return " ".join(w for w in words if w not in ("screen",))


def declared_bindings() -> list[tuple[type, Any]]:
    """(class, Binding) for every binding declared in the console's own code."""
    out = []
    for cls in binding_classes():
        for binding in cls.__dict__["BINDINGS"]:
            out.append((cls, binding))
    return out


def binding_ids() -> set[str]:
    from textual.binding import Binding

    return {b.id for _cls, b in declared_bindings() if isinstance(b, Binding) and b.id}


def effective_keymap(overrides: Mapping[str, str] | None = None) -> list[KeyEntry]:
    """Every binding with the keys it answers to after the config's overrides."""
    from textual.binding import Binding
    from textual.keys import _normalize_key_list

    overrides = overrides or {}
    entries = []
    for cls, binding in declared_bindings():
        if not isinstance(binding, Binding):
            continue
        binding_id = binding.id or ""
        if binding_id and binding_id in overrides:
            keys = _normalize_key_list(overrides[binding_id])
            source = "config"
        else:
            keys = binding.key
            source = "default"
        entries.append(
            KeyEntry(
                binding_id=binding_id,
                keys=tuple(k.strip() for k in keys.split(",") if k.strip()),
                description=binding.description or binding.action,
                where=where_of(cls),
                source=source,
                owner=cls.__name__,
            )
        )
    return entries
