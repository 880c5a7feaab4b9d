"""Name -> factory registries, so that configs name things and code looks them up (as timm does)."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str):
        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name.lower() in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name.lower()] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._entries[str(name).lower()]
        except KeyError:
            raise UserError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None
