"""Inference commands on a released model directory: embed, zero-shot, retrieve.

All of them rebuild the preprocessing from the model directory's
``preprocess.json``, never from a recipe: what was trained is what is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from domainclip.errors import DataError
from domainclip.protocols import Domain
from domainclip.records import Record
from domainclip.registry import get_domain


@dataclass(frozen=True)
class ImageSource:
    """Where inference finds its images: a generic manifest, a plain folder, or a recipe's layout and split.

    A recipe's layout passes each record's reader hints (values a dataset keeps in a metadata CSV rather than
    in the image file, such as an intensity rescaling) to the model's preprocessing; a manifest or a folder
    cannot carry them.
    """

    manifest: Path | None = None
    images: Path | None = None
    recipe: Path | None = None
    split: str | None = None
    overrides: tuple[str, ...] = ()

    def records(self, domain: Domain) -> tuple[list[Record], Path | None]:
        """The records to embed and the preprocessing cache folder to use (None: the default)."""
        given = [x for x in (self.manifest, self.images, self.recipe) if x is not None]
        if len(given) != 1:
            raise DataError("give exactly one of --manifest CSV, --images FOLDER or --recipe YAML")
        if self.manifest is not None:
            from domainclip.data.manifest import read_manifest

            return read_manifest(self.manifest), None
        if self.recipe is not None:
            return self._recipe_records(domain)
        if not self.images.is_dir():
            raise DataError(f"--images {self.images}: not a folder")
        found = domain.discover_images(self.images)
        if not found:
            raise DataError(f"--images {self.images}: no images found for the {domain.name!r} domain")
        return [
            Record(id=_image_id(p, self.images), patient_id=_image_id(p, self.images), image=p, source=str(p))
            for p in found
        ], None

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


def _image_id(path: Path, root: Path) -> str:
    """The image's path under ``root`` without its file type (``a/b.nii.gz`` -> ``a/b``); folders keep their name."""
    rel = path.relative_to(root) if path != root else Path(path.name)
    if path.is_dir() or not rel.suffix:
        return rel.as_posix()
    stem = rel.with_suffix("")
    if rel.suffix.lower() in COMPRESSION_SUFFIXES and stem.suffix:
        stem = stem.with_suffix("")
    return stem.as_posix()


def _embed_inputs(model_dir: Path, source: ImageSource, batch_size: int):
    """Load the model, find and check the images, embed them with the model's own preprocessing."""
    from domainclip.data.dataset import image_dataset
    from domainclip.data.validate import image_problems
    from domainclip.models.model_dir import load_model
    from domainclip.pipeline.embedding import embed_images

    loaded = load_model(model_dir)
    domain = get_domain(loaded.domain)
    records, cache_dir = source.records(domain)
    problems = image_problems(records, domain, preprocess=loaded.preprocess_config)
    if problems:
        raise DataError(f"{len(problems)} unusable image(s)", problems)
    dataset = image_dataset(records, domain.build_preprocessor(loaded.preprocess_config), cache_dir)
    return loaded, records, embed_images(loaded, dataset, batch_size)


def embed_command(model_dir: Path, out: Path, *, source: ImageSource, batch_size: int, with_text: bool) -> None:
    from safetensors.torch import save_file

    from domainclip.pipeline.embedding import embed_texts

    if out.suffix not in (".safetensors", ".parquet"):
        raise DataError(f"--out {out}: use a .safetensors or .parquet file name")
    loaded, records, image_emb = _embed_inputs(model_dir, source, batch_size)
    ids = [r.id for r in records]
    reports = [r.report for r in records]
    text_emb = embed_texts(loaded, reports) if with_text and all(reports) else None
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame = pd.DataFrame({"id": ids, "image_embedding": list(image_emb.numpy())})
        if text_emb is not None:
            frame["text_embedding"] = list(text_emb.numpy())
        frame.to_parquet(out)
    else:
        tensors = {"image": image_emb.contiguous()}
        if text_emb is not None:
            tensors["text"] = text_emb.contiguous()
        # ids travel in the header metadata (strings), so the file needs no pickle or sidecar.
        save_file(tensors, str(out), metadata={"ids": "\n".join(ids), "model": str(model_dir)})
    print(f"wrote {len(ids)} embeddings to {out}")


def load_embeddings(path: Path) -> tuple[list[str], torch.Tensor]:
    if not path.is_file():
        raise DataError(f"--index {path}: file not found (write one with `domainclip embed`)")
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        return list(frame["id"]), torch.tensor(np.stack(frame["image_embedding"].to_numpy()))
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            ids = (fh.metadata() or {}).get("ids", "").split("\n")
            return ids, fh.get_tensor("image")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
        raise DataError(f"--index {path}: not a domainclip embeddings file ({exc})") from None


def zeroshot_command(model_dir: Path, findings: str, out: Path, *, source: ImageSource, batch_size: int) -> None:
    from domainclip.models.model_dir import ZEROSHOT_FALLBACK_FILE
    from domainclip.pipeline.tasks.multilabel import zeroshot_probabilities
    from domainclip.pipeline.tasks.prompt_fallback import PromptFallback
    from domainclip.reports.vocabulary import Vocabulary

    names = [f.strip() for f in findings.split(",") if f.strip()]
    if not names:
        raise DataError("--findings: give at least one finding name, e.g. --findings 'pleural effusion,cardiomegaly'")
    loaded, records, image_emb = _embed_inputs(model_dir, source, batch_size)
    vocab = Vocabulary.load(loaded.vocabulary_path) if loaded.vocabulary_path else None
    prompts = {f.name: f.zeroshot_terms for f in vocab.findings} if vocab else {}
    templates = [tuple(t) for t in vocab.templates] if vocab else [("{finding}.", "no {finding}.")]
    fallback = PromptFallback.load(loaded.path / ZEROSHOT_FALLBACK_FILE)
    for name in fallback.names if fallback else ():
        if name in names:
            print(f"{name}: scored by report prototypes (its prompts ranked the validation split backwards)")
    probs = zeroshot_probabilities(loaded, image_emb, names, prompts, templates, fallback)
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
    from domainclip.heads.retrieval import topk_search
    from domainclip.models.model_dir import load_model

    ids, image_emb = load_embeddings(index)
    loaded = load_model(model_dir)
    text = loaded.encode_text([query])
    scores, idx = topk_search(text, image_emb, k=min(k, len(ids)))
    for rank, (score, i) in enumerate(zip(scores[0].tolist(), idx[0].tolist()), start=1):
        print(f"{rank}\t{ids[i]}\t{score:.4f}")
