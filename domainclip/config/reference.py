"""Generate the recipe key reference (docs/recipes.md) from the schema itself, so docs cannot drift.

python -m domainclip.config.reference > docs/recipes.md
"""

from __future__ import annotations

from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from domainclip import registry
from domainclip.config.schema import Recipe

HEADER = """# Recipe keys

Generated from `domainclip/config/schema.py` and each domain's sections by
`python -m domainclip.config.reference`; a test fails when this
file is out of date. Unknown keys are errors. `_base_: other.yaml` (or a list) inherits, paths relative to the
file; `--set dotted.key=value` overrides with YAML-typed values (`--set preprocess.size=[64,64,48]`). Keys marked
*contract* are stable (see the design notes). The resolved recipe is saved as `recipe.yaml` in the run folder.

| key | type | default | meaning |
|---|---|---|---|
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(repr(a) for a in get_args(annotation))
    if origin is Union and any(get_origin(a) is Literal for a in get_args(annotation)):
        return " \\| ".join("None" if a is type(None) else _type_name(a) for a in get_args(annotation))
    text = str(annotation) if origin is not None else getattr(annotation, "__name__", None) or str(annotation)
    return (
        text.replace("typing.", "").replace("pathlib.", "").replace("domainclip.config.schema.", "").replace("|", "\\|")
    )


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(rows(annotation, key + "."))
            continue
        default = "required" if field.is_required() else repr(field.default)
        out.append(f"| `{key}` | {_type_name(annotation)} | `{default}` | {field.description or ''} |")
    return out


TABLE_HEAD = "| key | type | default | meaning |\n|---|---|---|---|\n"


def _shared_rows() -> list[str]:
    domains = ", ".join(f"`{d}`" for d in registry.available_domains())
    out = []
    for row in rows(Recipe):
        if row.startswith("| `preprocess`"):
            continue  # owned by each domain: listed in the domain's table
        if row.startswith("| `domain`"):
            row = f"| `domain` | str | `required` | contract: the domain plug-in, one of {domains} |"
        out.append(row)
    return out


def render() -> str:
    """The shared keys, then one table per domain of the sections it owns."""
    parts = [HEADER + "\n".join(_shared_rows()) + "\n"]
    for domain in registry.available_domains():
        sections = registry.domain_sections(domain)
        lines = [row for name, model in sections.items() for row in rows(model, f"{name}.")]
        parts.append(
            f"\n## Domain `{domain}`\n\nSections owned by the `{domain}` domain "
            f"({', '.join(f'`{name}`' for name in sections)}); a key of another domain's section is refused.\n\n"
            + TABLE_HEAD
            + "\n".join(lines)
            + "\n"
        )
    return "".join(parts)


if __name__ == "__main__":
    print(render(), end="")
