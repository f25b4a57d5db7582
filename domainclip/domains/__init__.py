"""Domain plug-ins, resolved lazily by name (no import-time registration)."""

from __future__ import annotations

import importlib

from domainclip.domains.base import Domain
from domainclip.errors import RecipeError

_DOMAINS: dict[str, str] = {
    "ct": "domainclip.domains.ct:CTDomain",
}


def available_domains() -> list[str]:
    return sorted(_DOMAINS)


def get_domain(name: str) -> Domain:
    try:
        target = _DOMAINS[name]
    except KeyError:
        raise RecipeError(f"domain: unknown domain {name!r}; expected one of {available_domains()}") from None
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)()


__all__ = ["Domain", "available_domains", "get_domain"]
