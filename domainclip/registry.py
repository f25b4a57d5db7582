"""Names the core resolves lazily: domains and image towers, each mapped to where its code lives.

Nothing registers itself by being imported (timm's import-time registration trap): a name maps to a
``"module:attribute"`` string and that module is imported only when the name is used, so ``--help`` and
recipe validation stay light and a domain's heavy libraries load only for that domain. A domain outside
this package joins through the ``domainclip.domains`` entry-point group (the entry point loads a
:class:`DomainEntry`) or, in a test or a notebook, through :func:`register_domain`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from domainclip.errors import RecipeError

ENTRY_POINT_GROUP = "domainclip.domains"
TIMM_PREFIX = "timm:"


@dataclass(frozen=True)
class DomainEntry:
    """Where a domain's pieces live.

    ``plugin``: the class implementing :class:`~domainclip.protocols.Domain`. ``sections``: a mapping of
    recipe section name -> pydantic model (``preprocess`` at least) in a module that imports no heavy library,
    so validating a recipe does not import the domain's readers. ``commands``: modules whose ``register(app)``
    adds the domain's own CLI commands.
    """

    plugin: str
    sections: str
    commands: tuple[str, ...] = ()


_DOMAINS: dict[str, DomainEntry] = {
    "ct": DomainEntry(
        plugin="domainclip.domains.ct.domain:CTDomain",
        sections="domainclip.domains.ct.config:SECTIONS",
        commands=("domainclip.reports.cli",),
    ),
    "satellite": DomainEntry(
        plugin="domainclip.domains.satellite.domain:SatelliteDomain",
        sections="domainclip.domains.satellite.config:SECTIONS",
    ),
    "wsi": DomainEntry(
        plugin="domainclip.domains.wsi.domain:WSIDomain",
        sections="domainclip.domains.wsi.config:SECTIONS",
        commands=("domainclip.domains.wsi.cli",),
    ),
}
_TOWERS: dict[str, str] = {
    "vit": "domainclip.models.vit:ViTEncoder",
    "vit-groups": "domainclip.models.grouped_vit:GroupedViTEncoder",
    "i3d-resnet152": "domainclip.models.i3d_resnet:I3DResNet152",
    "resnet3d": "domainclip.models.resnet3d:ResNet3D",
    "abmil": "domainclip.models.mil:GatedAttentionMIL",
    "mean-mil": "domainclip.models.mil:MeanPoolMIL",
}
_entry_points_loaded = False


def resolve(target: str) -> Any:
    """The attribute named by ``"module:attribute"``."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def register_domain(name: str, entry: DomainEntry) -> None:
    """Add (or replace) a domain at run time; recipes with ``domain: <name>`` then validate and run."""
    _DOMAINS[name] = entry


def unregister_domain(name: str) -> None:
    _DOMAINS.pop(name, None)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name not in _DOMAINS:
            _DOMAINS[point.name] = point.load()


def available_domains() -> list[str]:
    _load_entry_points()
    return sorted(_DOMAINS)


def domain_entry(name: str) -> DomainEntry:
    _load_entry_points()
    try:
        return _DOMAINS[name]
    except KeyError:
        raise RecipeError(f"domain: unknown domain {name!r}; expected one of {available_domains()}") from None


def get_domain(name: str) -> Any:
    """A fresh instance of domain ``name``'s plug-in (a :class:`~domainclip.protocols.Domain`)."""
    return resolve(domain_entry(name).plugin)()


def domain_sections(name: str) -> dict[str, type]:
    """The recipe sections domain ``name`` owns (section name -> pydantic model)."""
    return dict(resolve(domain_entry(name).sections))


def available_towers() -> list[str]:
    return sorted(_TOWERS)


def tower_class(name: str) -> type:
    """The image-tower class registered as ``name`` (``model.image.type``); ``timm:<model>`` is any timm backbone."""
    if name.startswith(TIMM_PREFIX):
        return resolve("domainclip.models.timm_tower:TimmTower")
    if name not in _TOWERS:
        raise RecipeError(f"model.image.type: unknown image tower {name!r}; expected one of {available_towers()}")
    return resolve(_TOWERS[name])
