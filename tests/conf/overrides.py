"""Reads a domain's tiny test overrides (``tests/conf/<domain>.yaml``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parent


def domain_conf(domain: str) -> dict:
    path = CONF / f"{domain}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: every domain with a bundled recipe needs tiny test overrides here")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def tiny_overrides(domain: str, layout: str | None = None, fixture: Callable[[str], object] | None = None) -> list[str]:
    """The domain's model/stage overrides, plus the layout's data overrides with ``{fixture}`` paths filled in."""
    conf = domain_conf(domain)
    out = list(conf["overrides"])
    if layout is not None:
        if layout not in conf.get("layouts", {}):
            raise KeyError(f"tests/conf/{domain}.yaml: no tiny data for layout {layout!r}")
        for item in conf["layouts"][layout]:
            if "{" in item and fixture is not None:
                name = item[item.index("{") + 1 : item.index("}")]
                item = item.replace("{" + name + "}", str(fixture(name)))
            out.append(item)
    return out
