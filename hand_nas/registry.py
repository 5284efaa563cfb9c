"""One small registry per extension point; the registered name is the string used in configs."""
from __future__ import annotations

from collections.abc import Callable

from hand_nas.errors import HandNasError


class Registry:
    """Maps names to builders. Lookup errors list the known names."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, Callable] = {}

    def register(self, name: str) -> Callable:
        def deco(fn: Callable) -> Callable:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} registered twice")
            self._items[name] = fn
            return fn
        return deco

    def get(self, name: str) -> Callable:
        if name not in self._items:
            raise HandNasError(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


ENCODERS = Registry("encoder")
DECODERS = Registry("image decoder")
BRIDGES = Registry("local->global attention")
CROSS_HAND = Registry("cross-hand attention")
HEADS = Registry("head")
PRESETS = Registry("preset")
