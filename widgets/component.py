"""A widget's component classes, named once: in the DEFAULT_CSS rule that styles each."""

from __future__ import annotations

import re

_CHILD_CLASS = re.compile(r">\s*\.([\w-]+)")


def component_classes(css: str) -> set[str]:
    """The classes `css` styles as ``Widget > .name``: the widget's COMPONENT_CLASSES."""
    return set(_CHILD_CLASS.findall(css))
