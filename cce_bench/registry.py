"""Name -> factory registries, so that configs name things and code looks them up (as timm does).

Names are exact: one spelling per thing. A near miss (other case, a display label, a typo) gets an
error that names the right spelling."""
from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names registered one by one, and families of names a library provides (`captum_DeepLift`): a family
    is a prefix, the list of its members and a function that makes the entry of one member when asked."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        self._families: dict[str, tuple[Callable[[], list[str]], Callable[[str], Callable[..., T]]]] = {}
        self._made: dict[str, Callable[..., T]] = {}

    def add_family(
        self, prefix: str, members: Callable[[], list[str]], make: Callable[[str], Callable[..., T]]
    ) -> None:
        self._families[prefix] = (members, make)

    def family_names(self, prefix: str) -> list[str]:
        """The names a family provides, `PREFIX_Member`, in the library's order."""
        return [f"{prefix}_{member}" for member in self._families[prefix][0]()]

    def families(self) -> list[str]:
        return list(self._families)

    def _family_entry(self, name: str):
        if name in self._made:
            return self._made[name]
        prefix, _, member = name.partition("_")
        if prefix in self._families and member in self._families[prefix][0]():
            self._made[name] = self._families[prefix][1](member)
            return self._made[name]
        return None

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
        return name in self._entries or (isinstance(name, str) and self._family_entry(name) is not None)

    def get(self, name: str) -> Callable[..., T]:
        if name in self._entries:
            return self._entries[name]
        made = self._family_entry(str(name))
        if made is not None:
            return made
        families = "".join(f", or {prefix}_NAME" for prefix in self._families)
        raise UserError(f"unknown {self.kind} {name!r}{self.suggestion(str(name))}; known: {', '.join(self.names())}"
                        f"{families}" + (" (cce-bench methods lists them)" if families else ""))

    def suggestion(self, text: str) -> str:
        by_label = {
            str(getattr(f, "label", "")).lower(): n for n, f in self._entries.items() if getattr(f, "label", "")
        }
        members = (
            [n for prefix in self._families for n in self.family_names(prefix)] if "_" in text or ":" in text else []
        )
        folded = {n.lower().replace("-", "_"): n for n in [*self._entries, *members]}
        text = text.replace(":", "_").replace(".", "_")  # captum:DeepLift, captum.DeepLift -> captum_DeepLift
        match = folded.get(text.lower().replace("-", "_")) or by_label.get(text.lower())
        if match is None:
            close = difflib.get_close_matches(text.lower(), list(folded), n=1, cutoff=0.6)
            match = folded[close[0]] if close else None
        return f" (did you mean {match!r}?)" if match else ""
