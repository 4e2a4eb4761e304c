"""Providers and verifiers by name: the built-ins, then other packages' entry points.

A package adds a provider kind or a verifier by declaring an entry point::

    [project.entry-points."pytest_hybridjudge.providers"]
    echo = "my_pkg.providers:EchoProvider"      # factory(name, spec, root) -> Provider

    [project.entry-points."pytest_hybridjudge.verifiers"]
    is_upper = "my_pkg.checks:is_upper"          # function(arg, output, case) -> result

Nothing is imported and no entry point is read until a name is looked up, so a plain `pytest`
run pays nothing and a missing SDK only fails when its provider is used. Built-in names win
over entry points of the same name.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from typing import Any

from .errors import InputError

PROVIDERS_GROUP = "pytest_hybridjudge.providers"
VERIFIERS_GROUP = "pytest_hybridjudge.verifiers"


class RegistryError(InputError):
    """A name no built-in or installed package provides, or a plugin that cannot be loaded."""


class Registry:
    """Names mapped to objects, each imported on first use."""

    def __init__(self, group: str, what: str, builtins: Mapping[str, str]):
        self.group, self.what = group, what
        self._builtins = dict(builtins)  # name -> "module:attribute"
        self._plugins: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, Any] = {}

    def is_builtin(self, name: str) -> bool:
        """Whether `name` is built in (answered without reading entry points)."""
        return name in self._builtins

    def plugins(self) -> dict[str, EntryPoint]:
        """Entry points of installed packages in this group, read once."""
        if self._plugins is None:
            from importlib.metadata import entry_points

            self._plugins = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._plugins

    def names(self) -> list[str]:
        """Every name available: built-ins and installed plugins."""
        return sorted(set(self._builtins) | set(self.plugins()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._builtins or name in self.plugins())

    def unknown(self, name: str) -> str:
        """The message for a name nobody registered: the choices, and how to add one."""
        return (
            f"unknown {self.what} '{name}': use one of {', '.join(self.names())}, or install "
            f"a package that registers it under the entry point group `{self.group}`"
        )

    def get(self, name: str) -> Any:
        """The object registered as `name`; RegistryError naming the choices if there is none."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self._builtins:
            module, _, attribute = self._builtins[name].partition(":")
            value = importlib.import_module(module)
            for part in attribute.split("."):
                value = getattr(value, part)
        elif (entry := self.plugins().get(name)) is not None:
            try:
                value = entry.load()
            except Exception as exc:
                source = f" (package {entry.dist.name})" if entry.dist else ""
                raise RegistryError(
                    f"{self.what} '{name}' = {entry.value!r}{source} cannot be loaded: "
                    f"{type(exc).__name__}: {exc}; reinstall or fix that package"
                ) from None
        else:
            raise RegistryError(self.unknown(name))
        self._loaded[name] = value
        return value


PROVIDERS = Registry(
    PROVIDERS_GROUP,
    "provider kind",
    {
        "openai": "pytest_hybridjudge.providers.openai:OpenAIProvider.from_spec",
        "anthropic": "pytest_hybridjudge.providers.anthropic:AnthropicProvider.from_spec",
        "local": "pytest_hybridjudge.providers.local:LocalProvider.from_spec",
    },
)
VERIFIERS = Registry(
    VERIFIERS_GROUP,
    "verifier",
    {
        name: f"pytest_hybridjudge.verifiers:{name}_verifier"
        for name in (
            *("exact", "contains", "regex", "json_schema", "numeric", "python"),
            *("contains_case", "starts_with", "is_json", "contains_json", "not", "all"),
        )
    },
)
