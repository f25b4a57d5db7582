"""Load recipes: YAML + ``_base_`` inheritance + ``--set`` overrides -> a validated :class:`Recipe`.

Every failure becomes a :class:`RecipeError` (exit code 2) naming the file, the
dotted key and what was expected, so a user never sees a pydantic traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domainclip import registry
from domainclip.config.schema import Recipe, recipe_model
from domainclip.errors import RecipeError

BASE_KEY = "_base_"
# Keys whose values are paths; relative paths in a recipe file are resolved against that file.
PATH_KEYS = (("data", "root"), ("data", "manifest"), ("data", "vocabulary"))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys, got {type(content).__name__}")
    return content


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_paths(raw: dict[str, Any], folder: Path) -> None:
    """Make relative path values absolute against the folder of the file that set them."""
    for section, key in PATH_KEYS:
        block = raw.get(section)
        if isinstance(block, dict) and isinstance(block.get(key), str):
            value = Path(block[key]).expanduser()
            if not value.is_absolute():
                block[key] = str((folder / value).resolve())


def load_raw(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read one recipe file with its ``_base_`` chain merged in (bases first)."""
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise RecipeError(f"{path}: _base_ inheritance cycle: {cycle}")
    raw = _read_yaml(path)
    _resolve_paths(raw, path.parent)
    bases = raw.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise RecipeError(f"{path}: {BASE_KEY} must be a path or a list of paths (relative to this file)")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = _deep_merge(merged, load_raw(path.parent / base, (*_chain, path)))
    return _deep_merge(merged, raw)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], YAML-typed value)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"--set {text!r}: expected dotted.key=value, e.g. --set stages.align.steps=100")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise RecipeError(f"--set {text!r}: value is not valid YAML: {exc}") from None
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str], cwd: Path | None = None) -> dict[str, Any]:
    raw = dict(raw)
    for text in overrides:
        keys, value = parse_override(text)
        if tuple(keys) in PATH_KEYS and isinstance(value, str):
            p = Path(value).expanduser()
            value = str(p if p.is_absolute() else ((cwd or Path.cwd()) / p).resolve())
        node = raw
        for i, part in enumerate(keys[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise RecipeError(f"--set {text!r}: {'.'.join(keys[: i + 1])} is a value, not a section")
            else:
                child = node[part] = dict(child)
            node = child
        node[keys[-1]] = value
    return raw


def _other_domains_owning(section: str, key: str, domain: str) -> list[str]:
    """The other domains whose own ``section`` has ``key`` (to say whose key a misplaced one is)."""
    owners = []
    for other in registry.available_domains():
        if other == domain:
            continue
        model = registry.domain_sections(other).get(section)
        if model is not None and key in model.model_fields:
            owners.append(other)
    return owners


def _format_validation_error(source: str, exc: ValidationError, domain: str | None = None) -> str:
    lines = [f"{source}: invalid recipe"]
    domain_sections = set(registry.domain_sections(domain)) if domain else set()
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden" and len(loc) == 2 and loc[0] in domain_sections:
            owners = _other_domains_owning(loc[0], loc[1], domain)
            whose = f"; it is a key of domain {', '.join(map(repr, owners))}" if owners else ""
            what = f"not a key of domain {domain!r}'s {loc[0]} section{whose} (see docs/recipes.md)"
        elif err["type"] == "extra_forbidden":
            what = "unknown key (check the spelling; see docs/recipes.md for the keys)"
        elif err["type"] == "missing":
            what = "required key is missing"
        else:
            what = f"{err['msg']} (got {err.get('input')!r})"
        lines.append(f"  {key}: {what}")
    return "\n".join(lines)


def validate(raw: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """A validated recipe of the domain ``raw`` names: the shared sections plus that domain's own."""
    domain = raw.get("domain")
    if not isinstance(domain, str) or domain not in registry.available_domains():
        try:
            Recipe.model_validate({"domain": domain} if domain is not None else {})
        except ValidationError as exc:
            raise RecipeError(_format_validation_error(source, exc)) from None
    try:
        return recipe_model(domain).model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(_format_validation_error(source, exc, domain)) from None


def load_recipe(path: Path | str, overrides: list[str] | None = None) -> Recipe:
    """Load, inherit, override and validate a recipe file."""
    path = Path(path)
    raw = apply_overrides(load_raw(path), overrides or [])
    recipe = validate(raw, str(path))
    if recipe.data.layout == "manifest":
        if recipe.data.manifest is None:
            raise RecipeError(f"{path}: data.manifest: required when data.layout is 'manifest'")
        if not recipe.data.manifest.is_file():
            raise RecipeError(f"{path}: data.manifest: file not found: {recipe.data.manifest}")
    if recipe.data.layout not in ("demo", "manifest") and recipe.data.root is None:
        raise RecipeError(
            f"{path}: data.root: required for layout {recipe.data.layout!r}; set it with --set data.root=DIR"
        )
    if (
        recipe.data.root is not None
        and recipe.data.layout not in ("demo", "manifest")
        and not recipe.data.root.is_dir()
    ):
        raise RecipeError(f"{path}: data.root: folder not found: {recipe.data.root} (set it with --set data.root=DIR)")
    if recipe.data.vocabulary is not None and not recipe.data.vocabulary.is_file():
        raise RecipeError(f"{path}: data.vocabulary: file not found: {recipe.data.vocabulary}")
    return recipe


def dump_recipe(recipe: Recipe, path: Path) -> None:
    """Write the resolved recipe (all defaults filled in) as YAML."""
    data = recipe.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
