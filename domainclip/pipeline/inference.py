"""Inference commands on a released model directory: embed, zero-shot, retrieve.

All of them rebuild the preprocessing from the model directory's
``preprocess.json``, never from a recipe: what was trained is what is served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from domainclip.errors import DataError
from domainclip.protocols import Domain, FeatureDomain
from domainclip.records import Record
from domainclip.registry import get_domain


@dataclass(frozen=True)
class ImageSource:
    """Where inference finds its images: a generic manifest, a plain folder, a class-folder tree, or a recipe's layout
    and split.

    A recipe's layout passes each record's reader hints (values a dataset keeps in a metadata CSV rather than
    in the image file, such as an intensity rescaling) to the model's preprocessing; a manifest or a folder
    cannot carry them. A class-folder tree (``folder``: ``<root>/<class>/<image>``, EuroSAT's layout) gives each
    image its folder's name as its class label; ``label_column`` names a manifest's class column.
    """

    manifest: Path | None = None
    images: Path | None = None
    recipe: Path | None = None
    split: str | None = None
    overrides: tuple[str, ...] = ()
    folder: Path | None = None
    label_column: str | None = None
    features: Path | None = None

    def records(self, domain: Domain) -> tuple[list[Record], Path | None]:
        """The records to embed and the preprocessing cache folder to use (None: the default)."""
        given = [x for x in (self.manifest, self.images, self.recipe, self.folder, self.features) if x is not None]
        if len(given) != 1:
            raise DataError(
                "give exactly one of --manifest CSV, --images FOLDER, --features FOLDER or --recipe YAML "
                "(zeroshot also takes --folder CLASS_FOLDERS)"
            )
        if self.features is not None:
            return self._feature_records(domain), None
        if self.manifest is not None:
            from domainclip.config.schema import ManifestColumnsConfig
            from domainclip.data.manifest import read_manifest

            columns = ManifestColumnsConfig(label=self.label_column)  # inference needs no text: id, image will do
            return read_manifest(self.manifest, columns=columns, without_groups=None, require_texts=False), None
        if self.recipe is not None:
            return self._recipe_records(domain)
        root = self.images if self.images is not None else self.folder
        option = "--images" if self.images is not None else "--folder"
        if not root.is_dir():
            raise DataError(f"{option} {root}: not a folder")
        found = domain.discover_images(root)
        if not found:
            raise DataError(f"{option} {root}: no images found for the {domain.name!r} domain")
        return [
            Record(
                id=_image_id(p, root),
                patient_id=_image_id(p, root),
                image=p,
                label=_class_folder(p, root) if self.folder is not None else None,
                source=str(p),
            )
            for p in found
        ], None

    def _feature_records(self, domain: Domain) -> list[Record]:
        """One record per feature file of a two-level domain (TRIDENT's ``features_<encoder>/``, CLAM's
        ``h5_files/``): the bags are read instead of extracted from the images."""
        root = self.features
        if not isinstance(domain, FeatureDomain):
            raise DataError(f"--features {root}: the {domain.name!r} domain takes images, not feature files")
        if not root.is_dir():
            raise DataError(f"--features {root}: not a folder")
        found = domain.feature_files(root)
        if not found:
            raise DataError(f"--features {root}: no feature files found for the {domain.name!r} domain")
        return [Record(id=_image_id(p, root), patient_id=_image_id(p, root), image=p, source=str(p)) for p in found]

    def _recipe_records(self, domain: Domain) -> tuple[list[Record], Path | None]:
        from domainclip.config import load_recipe
        from domainclip.pipeline.data import load_records

        recipe = load_recipe(self.recipe, list(self.overrides))
        if recipe.domain != domain.name:
            raise DataError(f"--recipe {self.recipe}: domain {recipe.domain!r}, but the model is {domain.name!r}")
        records, problems = load_records(recipe, check=False)
        if problems:
            raise DataError(f"--recipe {self.recipe}: {len(problems)} bad row(s) in its data", problems)
        if self.split is not None:
            records = [r for r in records if r.split == self.split]
            if not records:
                raise DataError(f"--split {self.split}: no records of {self.recipe} are in that split")
        return records, recipe.data.cache_dir


COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def _class_folder(path: Path, root: Path) -> str | None:
    """The class folder an image sits in (the first folder under ``root``); None for an image directly in it."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _image_id(path: Path, root: Path) -> str:
    """The image's path under ``root`` without its file type (``a/b.nii.gz`` -> ``a/b``); folders keep their name."""
    rel = path.relative_to(root) if path != root else Path(path.name)
    if path.is_dir() or not rel.suffix:
        return rel.as_posix()
    stem = rel.with_suffix("")
    if rel.suffix.lower() in COMPRESSION_SUFFIXES and stem.suffix:
        stem = stem.with_suffix("")
    return stem.as_posix()


@dataclass(frozen=True)
class Inputs:
    """A loaded model, its domain, the records to run it on and their preprocessing cache folder."""

    loaded: Any
    domain: Domain
    records: list[Record]
    cache_dir: Path | None


def load_inputs(model_dir: Path, source: ImageSource) -> Inputs:
    """Load the model, find the images and check them with the model's preprocessing (all before any embedding)."""
    from domainclip.data.validate import image_problems
    from domainclip.models.model_dir import load_model

    loaded = load_model(model_dir)
    domain = get_domain(loaded.domain)
    records, cache_dir = source.records(domain)
    problems = image_problems(records, domain, preprocess=loaded.preprocess_config)
    if problems:
        raise DataError(f"{len(problems)} unusable image(s)", problems)
    return Inputs(loaded, domain, records, cache_dir)


def embed_inputs(inputs: Inputs, batch_size: int) -> torch.Tensor:
    """The records' image embeddings, with the model's own preprocessing."""
    from domainclip.data.dataset import image_dataset
    from domainclip.pipeline.embedding import embed_images

    preprocessor = inputs.loaded.preprocessor_for(inputs.cache_dir)  # a WSI model tiles and extracts as in training
    return embed_images(inputs.loaded, image_dataset(inputs.records, preprocessor, inputs.cache_dir), batch_size)


def embed_command(model_dir: Path, out: Path, *, source: ImageSource, batch_size: int, with_text: bool) -> None:
    """Write the image (and report) embeddings; with a georeferencing domain, each image's CRS and footprint too
    (:mod:`domainclip.pipeline.geo_index`: GeoParquet for ``.parquet``, header metadata for ``.safetensors``)."""
    from safetensors.torch import save_file

    from domainclip.pipeline import geo_index
    from domainclip.pipeline.embedding import embed_texts

    if out.suffix not in (".safetensors", ".parquet"):
        raise DataError(f"--out {out}: use a .safetensors or .parquet file name")
    inputs = load_inputs(model_dir, source)
    records, loaded = inputs.records, inputs.loaded
    image_emb = embed_inputs(inputs, batch_size)
    georefs = geo_index.image_georeferences(inputs.domain, records)
    ids = [r.id for r in records]
    reports = [r.report for r in records]
    text_emb = embed_texts(loaded, reports) if with_text and all(reports) else None
    out.parent.mkdir(parents=True, exist_ok=True)
    note = None
    if out.suffix == ".parquet":
        frame = pd.DataFrame({"id": ids, "image_embedding": list(image_emb.numpy())})
        if text_emb is not None:
            frame["text_embedding"] = list(text_emb.numpy())
        if georefs is None:
            frame.to_parquet(out)
        else:
            note = geo_index.write_parquet(frame, georefs, out)
    else:
        tensors = {"image": image_emb.contiguous()}
        if text_emb is not None:
            tensors["text"] = text_emb.contiguous()
        # ids travel in the header metadata (strings), so the file needs no pickle or sidecar.
        metadata = {"ids": "\n".join(ids), "model": str(model_dir)}
        if georefs is not None:
            metadata[geo_index.METADATA_KEY] = geo_index.metadata_entry(georefs)
        save_file(tensors, str(out), metadata=metadata)
    if georefs is not None:
        print(f"{sum(g is not None for g in georefs)} of {len(ids)} images are georeferenced")
    if note:
        print(note)
    print(f"wrote {len(ids)} embeddings to {out}")


@dataclass(frozen=True)
class EmbeddingIndex:
    """An index written by ``embed``: ids, image embeddings, and where each image lies (None: a domain with no
    geography, e.g. CT; see :func:`domainclip.pipeline.geo_index.places`)."""

    ids: list[str]
    image: torch.Tensor
    places: list[str] | None = None


def load_index(path: Path) -> EmbeddingIndex:
    from domainclip.pipeline import geo_index

    if not path.is_file():
        raise DataError(f"--index {path}: file not found (write one with `domainclip embed`)")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)  # GeoParquet too: the geometry comes back as WKB bytes, unused here
        if "id" not in frame.columns or "image_embedding" not in frame.columns:
            raise DataError(f"--index {path}: not a domainclip embeddings file (needs 'id' and 'image_embedding')")
        rows = geo_index.index_rows(frame)
        places = None if rows is None else geo_index.places(rows)
        return EmbeddingIndex(list(frame["id"]), torch.tensor(np.stack(frame["image_embedding"].to_numpy())), places)
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            image = fh.get_tensor("image")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
        raise DataError(f"--index {path}: not a domainclip embeddings file ({exc})") from None
    rows = json.loads(metadata[geo_index.METADATA_KEY]) if geo_index.METADATA_KEY in metadata else None
    places = None if rows is None else geo_index.places(rows)
    return EmbeddingIndex(metadata.get("ids", "").split("\n"), image, places)


def zeroshot_command(model_dir: Path, findings: str, out: Path, *, source: ImageSource, batch_size: int) -> None:
    from domainclip.models.model_dir import ZEROSHOT_FALLBACK_FILE
    from domainclip.pipeline.tasks.multilabel import zeroshot_probabilities
    from domainclip.pipeline.tasks.prompt_fallback import PromptFallback
    from domainclip.reports.vocabulary import Vocabulary

    names = [f.strip() for f in findings.split(",") if f.strip()]
    if not names:
        raise DataError("--findings: give at least one finding name, e.g. --findings 'pleural effusion,cardiomegaly'")
    inputs = load_inputs(model_dir, source)
    loaded, records, image_emb = inputs.loaded, inputs.records, embed_inputs(inputs, batch_size)
    vocab = Vocabulary.load(loaded.vocabulary_path) if loaded.vocabulary_path else None
    prompts, templates = loaded.finding_prompts()
    fallback = PromptFallback.load(loaded.path / ZEROSHOT_FALLBACK_FILE)
    for name in fallback.names if fallback else ():
        if name in names:
            print(f"{name}: scored by report prototypes (its prompts ranked the validation split backwards)")
    contrast = prompts if vocab and vocab.negatives == "other_findings" else None
    probs = zeroshot_probabilities(loaded, image_emb, names, prompts, templates, fallback, contrast)
    table = pd.DataFrame(probs, columns=names)
    table.insert(0, "id", [r.id for r in records])
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {len(records)} rows to {out}")
    labelled = [n for n in names if any(n in r.findings for r in records)]
    if labelled:
        from sklearn.metrics import roc_auc_score

        for k, name in enumerate(names):
            y = np.array([r.findings.get(name, np.nan) for r in records], dtype=float)
            known = ~np.isnan(y)
            if name in labelled and len(np.unique(y[known])) == 2:
                print(f"AUC {name}: {roc_auc_score(y[known], probs[known, k]):.4f} (n={int(known.sum())})")


def retrieve_command(model_dir: Path, index: Path, query: str, k: int) -> None:
    """Print ``rank, id, score`` per hit, and where the image lies when the index knows (a satellite index)."""
    from domainclip.heads.retrieval import topk_search
    from domainclip.models.model_dir import load_model

    found = load_index(index)
    loaded = load_model(model_dir)
    text = loaded.encode_text([query])
    if text.shape[-1] != found.image.shape[-1]:
        raise DataError(
            f"--index {index}: embeddings of size {found.image.shape[-1]}, but {model_dir} embeds to "
            f"{text.shape[-1]}; embed with this model"
        )
    scores, idx = topk_search(text, found.image, k=min(k, len(found.ids)))
    for rank, (score, i) in enumerate(zip(scores[0].tolist(), idx[0].tolist()), start=1):
        where = "" if found.places is None else f"\t{found.places[i]}"
        print(f"{rank}\t{found.ids[i]}\t{score:.4f}{where}")
