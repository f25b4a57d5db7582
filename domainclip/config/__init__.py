"""Typed recipes: schema, loading, overrides."""

from domainclip.config.loader import dump_recipe, load_recipe, validate
from domainclip.config.schema import Recipe, recipe_model

__all__ = ["Recipe", "dump_recipe", "load_recipe", "recipe_model", "validate"]
