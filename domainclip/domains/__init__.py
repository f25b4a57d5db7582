"""Domain plug-ins, one package each, resolved lazily by name through :mod:`domainclip.registry`."""

from __future__ import annotations

from domainclip.protocols import Domain
from domainclip.registry import available_domains, get_domain

__all__ = ["Domain", "available_domains", "get_domain"]
