"""Generate the recipe key reference (docs/recipes.md) from the schema itself, so docs cannot drift.

python -m domainclip.config.reference > docs/recipes.md
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from domainclip.config.schema import Recipe

HEADER = """# Recipe keys

Generated from `domainclip/config/schema.py` by `python -m domainclip.config.reference`; a test fails when this
file is out of date. Unknown keys are errors. `_base_: other.yaml` (or a list) inherits, paths relative to the
file; `--set dotted.key=value` overrides with YAML-typed values (`--set preprocess.size=[64,64,48]`). Keys marked
*contract* are stable (see the design notes). The resolved recipe is saved as `recipe.yaml` in the run folder.

| key | type | default | meaning |
|---|---|---|---|
"""


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " \\| ".join(repr(a) for a in get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("pathlib.", "").replace("|", "\\|")


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


def render() -> str:
    return HEADER + "\n".join(rows(Recipe)) + "\n"


if __name__ == "__main__":
    print(render(), end="")
