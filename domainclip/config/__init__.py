"""Typed recipes: schema, loading, overrides."""

from domainclip.config.loader import dump_recipe, load_recipe
from domainclip.config.schema import Recipe

__all__ = ["Recipe", "dump_recipe", "load_recipe"]
