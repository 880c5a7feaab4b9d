"""Name -> factory registries, so that configs name things and code looks them up (as timm does).

Names are exact: one spelling per thing. A near miss (other case, a display label, a typo) gets an
error that names the right spelling."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str):
        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        if name in self._entries:
            return self._entries[name]
        raise UserError(f"unknown {self.kind} {name!r}{self.suggestion(str(name))}; known: {', '.join(self.names())}")

    def suggestion(self, text: str) -> str:
        by_label = {str(getattr(f, "label", "")).lower(): n for n, f in self._entries.items() if getattr(f, "label", "")}
        folded = {n.lower().replace("-", "_"): n for n in self._entries}
        match = folded.get(text.lower().replace("-", "_")) or by_label.get(text.lower())
        if match is None:
            close = difflib.get_close_matches(text.lower(), list(folded), n=1, cutoff=0.6)
            match = folded[close[0]] if close else None
        return f" (did you mean {match!r}?)" if match else ""
