"""Name -> factory registries, so that configs name things and code looks them up (as timm does).

Names are exact: one spelling per thing. A near miss (other case, a display label, a typo) gets an
error that names the right spelling."""
from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names registered one by one, and families of names a library provides (`captum_DeepLift`): a family
    is a prefix, the list of its members and a function that makes the entry of one member when asked."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._families: dict[str, tuple[Callable[[], list[str]], Callable[[str], T]]] = {}
        self._made: dict[str, T] = {}
        self._old_prefixes: dict[str, str] = {}  # a family's former prefix -> its prefix (deprecated spellings)
        self._warned: set[str] = set()
        # Names found elsewhere than in the package (a user's code, an installed plugin): each source lists its
        # names and makes the entry of one when asked.
        self._sources: dict[str, tuple[Callable[[], list[str]], Callable[[str], T]]] = {}

    def add_family(
        self, prefix: str, members: Callable[[], list[str]], make: Callable[[str], T]
    ) -> None:
        self._families[prefix] = (members, make)

    def add_source(self, label: str, names: Callable[[], list[str]], make: Callable[[str], T]) -> None:
        """Whole names from outside the package (`custom`, an installed plugin's methods), listed by `names()`
        of the source and made by `make(name)` when asked; a name the package registers itself wins."""
        self._sources[label] = (names, make)

    def source_names(self, label: str) -> list[str]:
        return [name for name in self._sources[label][0]() if name not in self._entries]

    def family_names(self, prefix: str) -> list[str]:
        """The names a family provides, `PREFIX_Member`, in the library's order."""
        return [f"{prefix}_{member}" for member in self._families[prefix][0]()]

    def families(self) -> list[str]:
        return list(self._families)

    def rename_family(self, old_prefix: str, prefix: str) -> None:
        """`old_prefix_Member` still finds `prefix_Member`, with a warning, for one release."""
        self._old_prefixes[old_prefix] = prefix

    def _split(self, name: str, prefixes) -> tuple[str, str] | None:
        """(prefix, member) of `PREFIX_Member` for the longest of `prefixes` that starts the name."""
        for prefix in sorted(prefixes, key=len, reverse=True):
            if name.startswith(prefix + "_"):
                return prefix, name[len(prefix) + 1:]
        return None

    def _family_entry(self, name: str) -> T | None:
        if name in self._made:
            return self._made[name]
        for label, (_, make) in self._sources.items():
            if name in self.source_names(label):
                self._made[name] = make(name)
                return self._made[name]
        split = self._split(name, self._families)
        if split is not None and split[1] in self._families[split[0]][0]():
            self._made[name] = self._families[split[0]][1](split[1])
            return self._made[name]
        return None

    def canonical(self, name: str) -> str:
        """The name as the registry spells it now: a deprecated family spelling becomes the current one
        (said once per name on stderr); any other name is returned as it is."""
        name = str(name)
        if name in self._entries:
            return name
        split = self._split(name, self._old_prefixes)
        if split is None:
            return name
        current = f"{self._old_prefixes[split[0]]}_{split[1]}"
        if self._family_entry(current) is None:
            return name
        if name not in self._warned:
            self._warned.add(name)
            print(f"cce-bench: warning: {name} is now called {current}; the old name works until the next release",
                  file=sys.stderr)
        return current

    def register(self, name: str) -> Callable[[T], T]:
        def add(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries or (isinstance(name, str) and self._family_entry(self.canonical(name)) is not None)

    def get(self, name: str) -> T:
        name = self.canonical(name)
        if name in self._entries:
            return self._entries[name]
        made = self._family_entry(str(name))
        if made is not None:
            return made
        families = "".join(f", or {prefix}_NAME" for prefix in self._families)
        raise UserError(f"unknown {self.kind} {name!r}{self.suggestion(str(name))}; known: {', '.join(self.names())}"
                        f"{families}" + (f" (cce-bench {self.kind}s lists them)" if families else ""))

    def suggestion(self, text: str) -> str:
        by_label = {
            str(getattr(f, "label", "")).lower(): n for n, f in self._entries.items() if getattr(f, "label", "")
        }
        members = (
            [n for prefix in self._families for n in self.family_names(prefix)] if "_" in text or ":" in text else []
        )
        found = [n for label in self._sources for n in self.source_names(label)]
        folded = {n.lower().replace("-", "_"): n for n in [*self._entries, *found, *members]}
        text = text.replace(":", "_").replace(".", "_")  # captum:DeepLift, captum.DeepLift -> captum_DeepLift
        match = folded.get(text.lower().replace("-", "_")) or by_label.get(text.lower())
        if match is None:
            close = difflib.get_close_matches(text.lower(), list(folded), n=1, cutoff=0.6)
            match = folded[close[0]] if close else None
        return f" (did you mean {match!r}?)" if match else ""
