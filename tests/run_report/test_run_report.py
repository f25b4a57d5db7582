"""report.html from run folders that are not whole: no run at all, a run that died in training, a cut-off log line;
and the progress lines long loops print where no terminal draws a bar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domainclip.cli.main import app
from domainclip.errors import DataError
from domainclip.progress import progress_line, track
from domainclip.run_report.contents import read_run
from domainclip.run_report.report import write_html_report
from domainclip.run_report.tables import finding_rows, headline_rows

runner = CliRunner()


def training_rows(stage: str, steps: int) -> list[dict]:
    return [
        {"stage": stage, "step": s, "loss": 2.0 / s, "lr": 1e-3, "grad_norm": 1.0, "logit_scale": 14.0}
        for s in range(10, steps + 1, 10)
    ]


def died_in_alignment(root: Path) -> Path:
    """What a run killed during alignment leaves: the recipe, run info, a training log whose last line is cut."""
    (root / "logs").mkdir(parents=True)
    (root / "recipe.yaml").write_text("domain: wsi\ndescription: a run that died\ndata:\n  layout: tcga\n")
    (root / "run_info.json").write_text(json.dumps({"data": {"splits": {"train": 8, "valid": 2, "test": 2}}}))
    rows = [json.dumps(r) for r in training_rows("mae", 50) + training_rows("align", 30)]
    (root / "logs" / "metrics.jsonl").write_text("\n".join(rows) + '\n{"stage": "align", "st')
    return root


def test_a_folder_that_is_no_run_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not a run folder \(it has neither recipe.yaml nor logs/metrics.jsonl\)"):
        read_run(tmp_path)
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code != 0 and not (tmp_path / "report.html").exists()
    with pytest.raises(DataError, match="no such folder"):
        read_run(tmp_path / "absent")


def test_a_run_that_died_in_training_gets_its_curves_marked_incomplete(tmp_path: Path) -> None:
    run = read_run(died_in_alignment(tmp_path / "run"))
    assert not run.complete and run.missing == ["metrics.json"]
    assert len(run.training) == 8 and "line 9 is cut off" in run.notes[0]
    page = write_html_report(run.root).read_text()
    assert "Incomplete run." in page and "missing: metrics.json" in page and "cut off" in page
    assert page.count('alt="training curves, stage') == 2  # mae and align
    assert "<h2>Evaluation</h2>" not in page
    assert [p.name for p in run.root.iterdir() if p.name.startswith(".")] == [], "no temporary file left behind"


def test_a_damaged_log_line_before_the_last_is_an_error_naming_it(tmp_path: Path) -> None:
    root = died_in_alignment(tmp_path / "run")
    log = root / "logs" / "metrics.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "not json", *lines[1:]]))
    with pytest.raises(DataError, match=r"metrics.jsonl line 2: not a JSON object"):
        read_run(root)


def test_headline_rows_carry_interval_label_source_and_chance() -> None:
    metrics = {
        "zeroshot.auc_mean": 0.81,
        "zeroshot.auc_mean_ci_low": 0.7,
        "zeroshot.auc_mean_ci_high": 0.9,
        "zeroshot.label_source": "silver",
        "zeroshot.balanced_accuracy": 0.6,
        "classes.n": 4,
        "retrieval.text_to_image.R@5": 0.5,
        "retrieval.chance.text_to_image.R@5": 0.1,
        "regression.ndvi.r2": 0.4,
    }
    rows = {r["key"]: r for r in headline_rows(metrics)}
    assert list(rows) == [
        "zeroshot.auc_mean",
        "zeroshot.balanced_accuracy",
        "retrieval.text_to_image.R@5",
        "regression.ndvi.r2",
    ]
    assert rows["zeroshot.auc_mean"]["ci"] == (0.7, 0.9) and rows["zeroshot.auc_mean"]["source"] == "silver"
    assert rows["zeroshot.balanced_accuracy"]["chance"] == 0.25, "chance of a balanced accuracy: 1 / classes"
    assert rows["retrieval.text_to_image.R@5"]["chance"] == 0.1


def test_finding_rows_put_scores_beside_prevalence() -> None:
    metrics = {"zeroshot.auc.ascites": 0.9, "linear_probe.auc.ascites": 0.8, "zeroshot.fallback_findings": ["ascites"]}
    info = {"data": {"eval_split": "test", "findings": {"ascites": {"train_reports": 0.2, "test": 0.25}, "cyst": {}}}}
    rows = finding_rows(metrics, info)
    assert rows[0] | {} == {
        "finding": "ascites",
        "zeroshot": 0.9,
        "prompts_alone": None,
        "probe": 0.8,
        "train_reports": 0.2,
        "evaluated": 0.25,
        "fallback": True,
    }
    assert rows[1]["finding"] == "cyst" and rows[1]["zeroshot"] is None, "a finding without scores is still listed"


def test_progress_off_a_terminal_is_a_line_every_few_seconds_and_one_at_the_end(capsys) -> None:
    assert list(track(range(5), "embedding", every_s=0.0)) == list(range(5))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6 and lines[0].startswith("embedding: 1/5 (20 %), ") and "ETA" in lines[0]
    assert lines[-1].startswith("embedding: 5/5 (100 %) in 0 s")
    assert list(track(iter(range(3)), "reading", every_s=3600.0)) == [0, 1, 2]
    (line,) = capsys.readouterr().err.splitlines()  # no total (an iterator): a count, and the end line only
    assert line.startswith("reading: 3 in 0 s (")


def test_progress_lines_say_rate_and_eta() -> None:
    assert progress_line("tiling slides", 30, 120, 60.0) == "tiling slides: 30/120 (25 %), 0.5/s, ETA 3 min 00 s"
    assert progress_line("tiling slides", 120, 120, 7300.0, finished=True).endswith("in 2 h 01 min (0.0/s)")


def test_other_ranks_print_no_progress(capsys, monkeypatch) -> None:
    monkeypatch.setenv("RANK", "1")
    assert list(track(range(3), "embedding", every_s=0.0)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_the_report_command_redraws_a_partial_run(tmp_path: Path) -> None:
    root = died_in_alignment(tmp_path / "run")
    result = runner.invoke(app, ["report", str(root)])
    assert result.exit_code == 0 and result.output.strip() == str(root / "report.html")
    assert "Incomplete run." in (root / "report.html").read_text()


def test_a_training_stage_off_a_terminal_logs_its_steps(capsys) -> None:
    from domainclip.engine.progress import StageProgress

    with StageProgress("align", total_steps=20, start_step=10, enabled=True) as bar:
        for _ in range(10):
            bar.advance()
        bar.show_loss(0.5)
    (line,) = capsys.readouterr().err.splitlines()  # one line at the end: the 10 steps took under LOG_EVERY_S
    assert line.startswith("stage align steps: 10/10 (100 %) in 0 s") and "(at step 20 of 20), loss 0.5000" in line
    with StageProgress("align", total_steps=20, start_step=0, enabled=False) as bar:
        bar.advance()
    assert capsys.readouterr().err == "", "another rank's stage prints nothing"


def test_checking_a_dataset_ends_with_its_progress_line(capsys, tmp_path: Path) -> None:
    """zip() stops before a generator's last step: the check must still run its progress to the end line."""
    from domainclip.data.validate import image_problems
    from domainclip.records import Record
    from domainclip.registry import get_domain

    records = [
        Record(id=f"r{k}", patient_id=f"p{k}", image=tmp_path / f"absent{k}.nii.gz", texts=["x"]) for k in range(3)
    ]
    (tmp_path / "absent0.nii.gz").write_bytes(b"not a volume")
    problems = image_problems(records, get_domain("ct"))
    assert len(problems) == 3
    assert capsys.readouterr().err.splitlines()[-1].startswith("checking images: 1/1 (100 %) in ")
