"""The CT domain plug-in: readers, preprocessing, layouts, demo data and the findings vocabulary."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from domainclip.config.schema import DataConfig, PreprocessConfig
from domainclip.data.cache import default_cache_root
from domainclip.data.manifest import read_manifest
from domainclip.data.records import Record
from domainclip.domains.ct.demo import DEMO_VERSION, ensure_demo, write_demo
from domainclip.domains.ct.layouts import read_ct_rate
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.domains.ct.readers import discover_ct_images, read_ct, volume_problem
from domainclip.errors import DomainClipError, RecipeError


class CTDomain:
    """3D CT volumes in Hounsfield units paired with radiology reports."""

    name = "ct"
    spatial_dims = 3
    in_channels = 1

    def build_preprocessor(self, cfg: PreprocessConfig | Mapping[str, Any]) -> CTPreprocessor:
        return CTPreprocessor(cfg)

    def layouts(self) -> dict[str, Callable[[DataConfig], list[Record]]]:
        return {"manifest": _manifest_layout, "ct-rate": _ct_rate_layout, "demo": _demo_layout}

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        return write_demo(out, n, seed)

    def default_vocabulary(self) -> Path:
        return Path(__file__).with_name("vocabulary.yaml")

    def discover_images(self, folder: Path) -> list[Path]:
        return discover_ct_images(folder)

    def check_image(self, path: Path) -> str | None:
        """Why ``path`` is no usable CT (unreadable, truncated, not 3D, NaN voxels), or None.

        Decodes every voxel: truncation of a compressed file only shows at the end.
        """
        try:
            volume = read_ct(Path(path))
        except DomainClipError as exc:
            return str(exc)  # "<path>: <reason>"
        except Exception as exc:  # noqa: BLE001 - any failure to decode a user file is a reason, not a crash
            return f"{path}: unreadable image ({type(exc).__name__}: {exc})"
        return volume_problem(volume, Path(path))


def _manifest_layout(cfg: DataConfig) -> list[Record]:
    if cfg.manifest is None:
        raise RecipeError("data.manifest: required for layout 'manifest' (a CSV with id, patient_id, image, report)")
    return read_manifest(cfg.manifest)


def _ct_rate_layout(cfg: DataConfig) -> list[Record]:
    if cfg.root is None:
        raise RecipeError("data.root: required for layout 'ct-rate' (the CT-RATE folder); use --set data.root=DIR")
    return read_ct_rate(cfg.root)


def _demo_layout(cfg: DataConfig) -> list[Record]:
    folder = (
        cfg.demo.dir
        or default_cache_root(cfg.cache_dir) / "demo" / f"ct-v{DEMO_VERSION}-n{cfg.demo.n}-s{cfg.demo.seed}"
    )
    return read_manifest(ensure_demo(folder, cfg.demo.n, cfg.demo.seed))
