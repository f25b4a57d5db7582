"""domainclip."""

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy so that `import domainclip` stays cheap (no torch/transformers until needed).
    if name == "load_model":
        from domainclip.models.model_dir import load_model

        return load_model
    raise AttributeError(f"module 'domainclip' has no attribute {name!r}")
