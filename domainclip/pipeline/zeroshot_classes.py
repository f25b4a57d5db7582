"""``domainclip zeroshot --classes``: multi-class zero-shot (scenes, subtypes) on a released model directory.

Each image gets a softmax over the classes' prompt ensembles, scaled by the model's learned logit scale, with the
templates the model was evaluated with (:func:`class_templates`) and the scoring of evaluation itself
(:func:`~domainclip.pipeline.tasks.multiclass.zeroshot_class_probabilities`), so the command reproduces the run's
``zeroshot.top1`` on the same images.

Truth, when the images have it (a class-folder tree's folder names, a manifest's label column, a recipe layout's
classes), is matched to the given class names by their words (:func:`label_matches`: ``AnnualCrop`` is
"annual crop", ``SeaLake`` is "sea or lake", ``Industrial`` is "industrial area"). An image whose folder or label
matches none of the classes is still scored and written, since its best class among those given is a real answer,
but it is left out of the accuracy, which is only defined over the classes competed for; the command names each
such label, so a typo is not silent. When no label matches at all the command refuses before embedding anything:
then ``--classes`` and the data do not speak of the same classes, and an accuracy over nothing would hide that.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from domainclip.errors import DataError
from domainclip.pipeline.inference import ImageSource, embed_inputs, load_inputs

RESERVED_COLUMNS = ("id", "predicted")
CONNECTIVES = frozenset({"a", "an", "and", "or", "of", "the", "with"})
DEFAULT_TEMPLATES = ["{finding}."]


def parse_classes(text: str) -> list[str]:
    """The comma-separated class names, stripped, in order: at least two, no repeats, none named like a column."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    if len(names) < 2:
        raise DataError("--classes: give at least two class names, e.g. --classes 'annual crop,forest,river'")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise DataError(f"--classes: {', '.join(map(repr, repeated))} given more than once")
    clash = [n for n in names if n in RESERVED_COLUMNS]
    if clash:
        raise DataError(f"--classes: {', '.join(map(repr, clash))} is a column name of the output CSV; rename it")
    return names


def class_words(name: str) -> tuple[str, ...]:
    """A class name's identifying words: CamelCase split, lower case, punctuation and connectives dropped, so a
    folder ``SeaLake``, a label ``sea lake`` and a class "sea or lake" have the same words."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower())
    return tuple(w for w in words if w not in CONNECTIVES) or tuple(words)


def label_matches(labels: Sequence[str], classes: Sequence[str]) -> dict[str, int]:
    """Each label's class index, for the labels that match one: the class with the same words, else the only class
    whose words include all of the label's (EuroSAT's folder ``Industrial`` is "industrial area"); a label that
    several classes include (``Crop``: "annual crop" and "permanent crop") matches none."""
    words = [class_words(c) for c in classes]
    for k, w in enumerate(words):
        if w in words[:k]:
            raise DataError(f"--classes: {classes[words.index(w)]!r} and {classes[k]!r} name the same class")
    out: dict[str, int] = {}
    for label in dict.fromkeys(labels):
        mine = class_words(label)
        if mine in words:
            out[label] = words.index(mine)
            continue
        including = [k for k, w in enumerate(words) if set(mine) <= set(w)]
        if len(including) == 1:
            out[label] = including[0]
    return out


def truth_indices(labels: Sequence[str | None], classes: Sequence[str]) -> tuple[np.ndarray, Counter]:
    """Each image's class index (-1: no label, or one that matches no class) and the count of every unmatched
    label; prints each label that matched a class by inclusion rather than by its words."""
    known = [label for label in labels if label is not None]
    matches = label_matches(known, classes)
    for label, k in matches.items():
        if class_words(label) != class_words(classes[k]):
            print(f"{label!r} is scored as {classes[k]!r}")
    y = np.array([matches.get(label, -1) if label is not None else -1 for label in labels], dtype=int)
    return y, Counter(label for label in known if label not in matches)


def class_templates(loaded) -> tuple[list[str], str]:
    """The multi-class templates the model's evaluation used, and where they were found.

    Evaluation takes the recipe's ``evaluate.class_templates``, else the positive halves of ``evaluate.templates``,
    else of the vocabulary's pairs; ``run`` saves the recipe's two keys in the model directory's config.json
    (``extra.prompts``), so the command needs the model directory alone.
    """
    from domainclip.models.model_dir import CONFIG_FILE
    from domainclip.reports.vocabulary import Vocabulary

    prompts = loaded.saved_prompts
    where = f"{Path(loaded.path) / CONFIG_FILE}: extra.prompts"
    if prompts.get("class_templates"):
        return [str(t) for t in prompts["class_templates"]], f"{where}.class_templates"
    if prompts.get("templates"):
        return [str(pair[0]) for pair in prompts["templates"]], f"{where}.templates"
    if loaded.vocabulary_path is not None:
        vocab = Vocabulary.load(loaded.vocabulary_path)
        return [pos for pos, _ in vocab.templates], str(loaded.vocabulary_path)
    return list(DEFAULT_TEMPLATES), "default"


def _check_templates(templates: Sequence[str], origin: str) -> None:
    """Refuse a template without exactly one ``{...}`` field before any image is embedded."""
    from domainclip.heads.zeroshot import fill_template

    for template in templates:
        try:
            fill_template(template, "x")
        except ValueError as exc:
            raise DataError(f"class templates from {origin}: {exc}") from None


def _with_label_column(source: ImageSource) -> ImageSource:
    """A manifest's ``label`` column is its class column unless ``--label-column`` names another."""
    if source.manifest is None or source.label_column is not None or not Path(source.manifest).is_file():
        return source
    header = pd.read_csv(source.manifest, nrows=0).columns
    return replace(source, label_column="label") if "label" in header else source


def _report_unmatched(unmatched: Counter, classes: Sequence[str], matched: int) -> None:
    listed = ", ".join(f"{label!r} ({n} image(s))" for label, n in sorted(unmatched.items()))
    if matched == 0:
        raise DataError(
            f"no image's folder or label matches any of --classes {', '.join(map(repr, classes))}: found {listed}"
        )
    for label, n in sorted(unmatched.items()):
        print(f"{label!r} matches none of --classes: its {n} image(s) are scored but left out of the accuracy")


def print_scores(y: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Top-1, balanced accuracy and each class's recall over the images with known truth; returns them."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    known = y >= 0
    truth, pred = y[known], probs[known].argmax(axis=1)
    present = sorted(set(truth.tolist()))
    with warnings.catch_warnings():  # a class predicted but absent from the truth is expected here
        warnings.simplefilter("ignore", UserWarning)
        scores = {
            "top1": float((pred == truth).mean()),
            "balanced_accuracy": float(balanced_accuracy_score(truth, pred)),
        }
        recalls = recall_score(truth, pred, labels=present, average=None, zero_division=0)
    print(f"top-1 accuracy: {scores['top1']:.4f} (n={int(known.sum())})")
    print(f"balanced accuracy: {scores['balanced_accuracy']:.4f} (over {len(present)} classes with truth)")
    for k, recall in zip(present, recalls):
        print(f"recall {classes[k]}: {recall:.4f} (n={int((truth == k).sum())})")
        scores[f"recall.{classes[k]}"] = float(recall)
    return scores


def zeroshot_classes_command(model_dir: Path, classes: str, out: Path, *, source: ImageSource, batch_size: int) -> None:
    """Write ``id``, one probability column per class (named as given, each row summing to 1) and ``predicted``;
    print the accuracy when the images' classes are known."""
    from domainclip.pipeline.tasks.multiclass import zeroshot_class_probabilities

    names = parse_classes(classes)
    inputs = load_inputs(model_dir, _with_label_column(source))
    y, unmatched = truth_indices([r.label for r in inputs.records], names)
    if unmatched:
        _report_unmatched(unmatched, names, int((y >= 0).sum()))
    templates, origin = class_templates(inputs.loaded)
    _check_templates(templates, origin)
    print(f"prompts: {' | '.join(templates)} (from {origin})")
    probs = zeroshot_class_probabilities(inputs.loaded, embed_inputs(inputs, batch_size), names, templates)
    table = pd.DataFrame(probs, columns=names)
    table.insert(0, "id", [r.id for r in inputs.records])
    table["predicted"] = [names[k] for k in probs.argmax(axis=1)]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {len(table)} rows to {out}")
    if (y >= 0).any():
        print_scores(y, probs, names)
    else:
        print("no truth for these images (no class folders or label column): accuracy not computed")
