"""fit_evaluate_survival and ``domainclip survival``: files written, gbsg2 reference, every bad input named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from domainclip.cli.heads import register, survival_command
from domainclip.errors import DataError
from domainclip.heads.survival import fit_evaluate_survival

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # a callback keeps `survival` a sub-command, as on the real app
        pass

    return app


@pytest.fixture
def gbsg2_csv(gbsg2, tmp_path):
    path = tmp_path / "gbsg2.csv"
    gbsg2.assign(patient=[f"p{i:03d}" for i in range(len(gbsg2))]).to_csv(path, index=False)
    return path


def test_fit_evaluate_survival_writes_plot_and_coefficients(gbsg2_split, tmp_path):
    from lifelines.statistics import logrank_test

    train, test, features = gbsg2_split
    out = fit_evaluate_survival(
        train[features],
        train["time"],
        train["cens"],
        None,
        None,
        None,
        test[features],
        test["time"],
        test["cens"],
        out_dir=tmp_path,
        penalty=0.0,
        feature_names=features,
    )
    assert (tmp_path / "km_risk_groups.png").read_bytes()[:8] == PNG_MAGIC
    coefficients = pd.read_csv(tmp_path / "coefficients.csv")
    assert coefficients["feature"].tolist() == features
    np.testing.assert_allclose(coefficients["hazard_ratio"], np.exp(coefficients["coef"]))
    # the log-rank p-value is lifelines' for the groups split at the training median risk
    from domainclip.heads.cox import CoxHead

    head = CoxHead(penalty=0.0).fit(train[features], train["time"], train["cens"])
    high = head.predict_risk(test[features]) > np.median(head.predict_risk(train[features]))
    assert out["n_high_risk"] == int(high.sum())
    reference = logrank_test(test["time"][high], test["time"][~high], test["cens"][high], test["cens"][~high])
    assert out["logrank_p"] == pytest.approx(reference.p_value, rel=1e-9)
    assert out["logrank_p"] < 0.01  # the gbsg2 covariates separate the groups


def test_cli_reproduces_the_gbsg2_reference(app, gbsg2_csv, tmp_path, lifelines_gbsg2_fit):
    _, lifelines_c = lifelines_gbsg2_fit
    features = "age,tsize,pnodes,progrec,estrec,horTh_yes,menostat_Pre,tgrade_II,tgrade_III"
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "survival",
            "--table",
            str(gbsg2_csv),
            "--time-col",
            "time",
            "--event-col",
            "cens",
            "--feature-cols",
            features,
            "--penalty",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["c_index"] == pytest.approx(0.6617, abs=0.005)
    assert metrics["c_index"] == pytest.approx(lifelines_c, abs=1e-6)  # same split as the reference protocol
    assert {"c_index_uno", "td_auc_mean", "ibs"} <= metrics.keys()
    assert (metrics["n_train"], metrics["n_test"]) == (480, 206)
    assert pd.read_csv(out / "coefficients.csv")["feature"].tolist() == features.split(",")
    assert (out / "km_risk_groups.png").read_bytes()[:8] == PNG_MAGIC
    assert "c_index=0.66" in result.output


def test_cli_help_shows_an_example(app):
    result = CliRunner().invoke(app, ["survival", "--help"])
    assert result.exit_code == 0
    assert "Example: domainclip survival --table" in result.output


def _embeddings_table(tmp_path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"study{i}" for i in range(n)]
    emb = rng.normal(size=(n, 6)).astype(np.float32)
    time = np.ceil(rng.exponential(np.exp(-emb[:, 0])) * 100)
    table = pd.DataFrame(
        {
            "id": ids,
            "T": time,
            "E": (rng.random(n) < 0.7).astype(int),
            "split": np.array(["train", "valid", "test"])[np.arange(n) % 3],
        }
    )
    table.to_csv(tmp_path / "table.csv", index=False)
    return table, emb


def test_features_from_a_safetensors_embeddings_file_and_an_mlp_head(tmp_path):
    from safetensors.numpy import save_file

    table, emb = _embeddings_table(tmp_path)
    order = np.random.default_rng(1).permutation(len(table))  # the file's row order differs from the table's
    save_file(
        {"image": emb[order]},
        str(tmp_path / "emb.safetensors"),
        metadata={"ids": "\n".join(table["id"][order])},
    )
    metrics = survival_command(
        tmp_path / "table.csv",
        "T",
        "E",
        tmp_path / "out",
        features=tmp_path / "emb.safetensors",
        id_col="id",
        split_col="split",
        hidden="8",
        penalty=1e-3,
    )
    assert metrics["head"] == "mlp 8" and metrics["n_valid"] == 40
    assert not (tmp_path / "out" / "coefficients.csv").exists()
    assert metrics["c_index"] > 0.6  # the first embedding dimension drives the hazard


def test_features_from_csv_are_joined_on_the_id_column(tmp_path):
    table, emb = _embeddings_table(tmp_path)
    features = pd.DataFrame(emb, columns=[f"f{j}" for j in range(6)]).assign(id=table["id"]).iloc[::-1]
    features.to_csv(tmp_path / "features.csv", index=False)
    metrics = survival_command(
        tmp_path / "table.csv",
        "T",
        "E",
        tmp_path / "out",
        features=tmp_path / "features.csv",
        id_col="id",
        split_col="split",
        penalty=0.0,
    )
    coefficients = pd.read_csv(tmp_path / "out" / "coefficients.csv").set_index("feature")
    assert coefficients["coef"].abs().idxmax() == "f0"
    assert metrics["c_index"] > 0.6


def _bad(tmp_path, frame: pd.DataFrame, **options):
    frame.to_csv(tmp_path / "bad.csv", index=False)
    defaults = {"feature_cols": "x"}
    defaults.update(options)
    return lambda: survival_command(tmp_path / "bad.csv", "T", "E", tmp_path / "out", **defaults)


def _frame(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "T": rng.uniform(1, 10, n).round(1),
            "E": (np.arange(n) % 2).astype(int),
        }
    )


@pytest.mark.parametrize(
    "change, options, message",
    [
        (
            lambda f: f.drop(columns="T"),
            {},
            r"--time-col 'T': no such column in .*bad.csv \(columns: id, x, E\)",
        ),
        (lambda f: f.drop(columns="E"), {}, r"--event-col 'E': no such column"),
        (
            lambda f: f.assign(T=[-1.0] + f["T"].tolist()[1:]),
            {},
            r"column 'T': negative times on lines 2",
        ),
        (
            lambda f: f.assign(E=[2] + f["E"].tolist()[1:]),
            {},
            r"column 'E': events must be 0 .* lines 2 hold 2",
        ),
        (lambda f: f.assign(E=0), {}, r"column 'E': all 20 samples are censored"),
        (lambda f: f.assign(E=[1] + [0] * 19), {}, r"column 'E': 1 event\(s\) and 19 censored"),
        (
            lambda f: f.assign(x=["a"] + f["x"].tolist()[1:]),
            {},
            r"column 'x': missing or non-numeric values on lines 2",
        ),
        (lambda f: f, {"feature_cols": "x,nope"}, r"--feature-cols 'nope': no such column"),
        (
            lambda f: f.assign(split="train"),
            {"split_col": "split"},
            r"column 'split': no 'test' rows",
        ),
        (
            lambda f: f.assign(split=["dev"] + ["train"] * 19),
            {"split_col": "split"},
            r"lines 2 hold dev",
        ),
        (
            lambda f: f,
            {"feature_cols": None, "features": "missing.csv", "id_col": "id"},
            r"--features .*missing.csv: file not found",
        ),
        (lambda f: f, {"feature_cols": None, "features": None}, r"either --feature-cols"),
    ],
    ids=[
        "no-time-col",
        "no-event-col",
        "negative-time",
        "event-2",
        "all-censored",
        "one-event",
        "text-feature",
        "unknown-feature",
        "no-test-split",
        "bad-split-value",
        "no-feature-file",
        "no-features",
    ],
)
def test_bad_tables_raise_data_error_naming_the_problem(tmp_path, change, options, message):
    if options.get("features"):
        options = {**options, "features": tmp_path / options["features"]}
    with pytest.raises(DataError, match=message):
        _bad(tmp_path, change(_frame()), **options)()


def test_feature_file_ids_that_do_not_match_the_table_are_listed(tmp_path):
    frame = _frame()
    pd.DataFrame({"id": [f"s{i}" for i in range(2, 20)], "f": np.arange(18.0)}).to_csv(tmp_path / "f.csv", index=False)
    run = _bad(tmp_path, frame, feature_cols=None, features=tmp_path / "f.csv", id_col="id")
    with pytest.raises(DataError, match=r"2 of 20 ids of the table's 'id' column have no features: s0, s1"):
        run()


def test_cli_exits_non_zero_with_the_data_error(app, tmp_path):
    _frame().drop(columns="T").to_csv(tmp_path / "bad.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "survival",
            "--table",
            str(tmp_path / "bad.csv"),
            "--time-col",
            "T",
            "--event-col",
            "E",
            "--feature-cols",
            "x",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, DataError) and "--time-col 'T'" in str(result.exception)
