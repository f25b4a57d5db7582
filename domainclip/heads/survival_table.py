"""Reading a survival table (CSV) and its features for ``domainclip survival``, with every check a user needs.

Features come either from columns of the table (``feature_cols``) or from a
separate file joined on an id column: a CSV with that id column plus numeric
columns, or a ``.safetensors`` file written by ``domainclip embed`` (tensor
``image``, ids in the header metadata). Problems are reported as
:class:`DataError` naming the file, the column and the CSV line numbers (line 1 is
the header), or the ids that do not match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from domainclip.errors import DataError

SPLITS = ("train", "valid", "test")
_MAX_LISTED = 5


@dataclass
class SurvivalTable:
    """Aligned arrays, one row per sample of the table."""

    features: np.ndarray  # (n, d) float64
    feature_names: list[str]
    time: np.ndarray  # (n,) float64
    event: np.ndarray  # (n,) bool
    split: np.ndarray | None  # (n,) str among SPLITS, or None when the table has no split column


def _listed(items: Sequence[object]) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    return shown + (f" ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _lines(mask: np.ndarray) -> str:
    """CSV line numbers (header = line 1) of the rows where ``mask`` is true."""
    return _listed([int(i) + 2 for i in np.flatnonzero(mask)])


def read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{what} {path}: file not found")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path}: not a readable CSV ({exc})") from None


def _column(frame: pd.DataFrame, name: str, option: str, path: Path) -> pd.Series:
    if name not in frame.columns:
        raise DataError(f"{option} {name!r}: no such column in {path} (columns: {', '.join(map(str, frame.columns))})")
    return frame[name]


def _numeric(series: pd.Series, path: Path) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{path} column {series.name!r}: missing or non-numeric values on lines {_lines(bad)}")
    return values


def _time_event(frame: pd.DataFrame, path: Path, time_col: str, event_col: str) -> tuple[np.ndarray, np.ndarray]:
    time = _numeric(_column(frame, time_col, "--time-col", path), path)
    if (time < 0).any():
        raise DataError(f"{path} column {time_col!r}: negative times on lines {_lines(time < 0)}")
    event = _numeric(_column(frame, event_col, "--event-col", path), path)
    not_binary = ~np.isin(event, (0.0, 1.0))
    if not_binary.any():
        values = sorted({str(v) for v in frame[event_col][not_binary]})
        raise DataError(
            f"{path} column {event_col!r}: events must be 0 (censored) or 1 (event); "
            f"lines {_lines(not_binary)} hold {_listed(values)}"
        )
    if not (event == 1).any():
        raise DataError(
            f"{path} column {event_col!r}: all {len(event)} samples are censored (no 1); a Cox model needs events"
        )
    return time, event == 1


def _split(frame: pd.DataFrame, path: Path, split_col: str) -> np.ndarray:
    split = _column(frame, split_col, "--split-col", path).astype(str).str.strip().str.lower().to_numpy()
    bad = ~np.isin(split, SPLITS)
    if bad.any():
        raise DataError(
            f"{path} column {split_col!r}: values must be one of {', '.join(SPLITS)}; "
            f"lines {_lines(bad)} hold {_listed(sorted(set(split[bad])))}"
        )
    for needed in ("train", "test"):
        if not (split == needed).any():
            raise DataError(f"{path} column {split_col!r}: no {needed!r} rows")
    return split


def _features_from_file(path: Path, ids: pd.Series, id_col: str) -> tuple[np.ndarray, list[str]]:
    if not path.is_file():
        raise DataError(f"--features {path}: file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="np") as handle:
                keys = list(handle.keys())
                key = "image" if "image" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise DataError(f"--features {path}: expected a tensor named 'image', found {keys}")
                matrix = handle.get_tensor(key).astype(np.float64)
                file_ids = [i for i in (handle.metadata() or {}).get("ids", "").split("\n") if i]
        except SafetensorError as exc:
            raise DataError(f"--features {path}: not a safetensors file ({exc})") from None
        if len(file_ids) != len(matrix):
            raise DataError(f"--features {path}: {len(matrix)} rows but {len(file_ids)} ids in the header metadata")
        names = [f"{key}_{j}" for j in range(matrix.shape[1])]
        by_id = pd.DataFrame(matrix, index=pd.Index(file_ids, dtype=str), columns=names)
    else:
        frame = read_csv(path, "--features")
        file_id = _column(frame, id_col, "--id-col", path).astype(str)
        names = [c for c in frame.columns if c != id_col]
        matrix = np.column_stack([_numeric(frame[c], path) for c in names]) if names else np.empty((len(frame), 0))
        by_id = pd.DataFrame(matrix, index=pd.Index(file_id, dtype=str), columns=names)
    if not names:
        raise DataError(f"--features {path}: no feature columns besides {id_col!r}")
    duplicated = by_id.index[by_id.index.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"--features {path}: duplicated ids {_listed(duplicated)}")
    wanted = ids.astype(str)
    missing = wanted[~wanted.isin(by_id.index)].tolist()
    if missing:
        raise DataError(
            f"--features {path}: {len(missing)} of {len(wanted)} ids of the table's {id_col!r} column "
            f"have no features: {_listed(missing)}"
        )
    return by_id.loc[wanted.to_numpy()].to_numpy(dtype=np.float64), names


def load_survival_table(
    table: Path,
    time_col: str,
    event_col: str,
    *,
    feature_cols: Sequence[str] | None = None,
    features: Path | None = None,
    id_col: str | None = None,
    split_col: str | None = None,
) -> SurvivalTable:
    """Read and check the table and its features; exactly one of ``feature_cols`` / ``features``."""
    if (feature_cols is None) == (features is None):
        raise DataError("give either --feature-cols a,b,... or --features FILE --id-col ID (exactly one)")
    frame = read_csv(table, "--table")
    if frame.empty:
        raise DataError(f"--table {table}: no rows")
    time, event = _time_event(frame, table, time_col, event_col)
    if feature_cols is not None:
        names = [str(c) for c in feature_cols]
        if not names:
            raise DataError("--feature-cols: no column names given")
        matrix = np.column_stack([_numeric(_column(frame, c, "--feature-cols", table), table) for c in names])
    else:
        if id_col is None:
            raise DataError("--features needs --id-col, the column that joins the table to the feature file")
        ids = _column(frame, id_col, "--id-col", table)
        duplicated = ids[ids.duplicated()].astype(str).unique().tolist()
        if duplicated:
            raise DataError(f"{table} column {id_col!r}: duplicated ids {_listed(duplicated)}")
        assert features is not None
        matrix, names = _features_from_file(features, ids, id_col)
    split = _split(frame, table, split_col) if split_col is not None else None
    return SurvivalTable(matrix, names, time, event, split)


def split_indices(
    table: SurvivalTable,
    *,
    with_validation: bool,
    seed: int = 0,
    test_size: float = 0.3,
    valid_size: float = 0.15,
    event_col: str = "event",
) -> dict[str, np.ndarray]:
    """Row indices per split: the table's split column, else a seeded split stratified on the event.

    Without a split column: ``test_size`` of the rows go to test (scikit-learn's
    ``train_test_split(stratify=event, random_state=seed)``, the protocol of the
    gbsg2 reference), and, only when a validation split is needed (MLP heads),
    ``valid_size`` of the remaining rows go to valid the same way.
    """
    if table.split is not None:
        return {s: np.flatnonzero(table.split == s) for s in SPLITS}
    from sklearn.model_selection import train_test_split

    n_events = int(table.event.sum())
    n_censored = int((~table.event).sum())
    needed = 3 if with_validation else 2
    if min(n_events, n_censored) < needed:
        raise DataError(
            f"column {event_col!r}: {n_events} event(s) and {n_censored} censored; a split stratified on "
            f"the event needs at least {needed} of each (or give --split-col)"
        )
    rows = np.arange(len(table.time))
    train, test = train_test_split(rows, test_size=test_size, stratify=table.event, random_state=seed)
    valid = np.empty(0, dtype=int)
    if with_validation:
        train, valid = train_test_split(train, test_size=valid_size, stratify=table.event[train], random_state=seed)
    return {"train": np.sort(train), "valid": np.sort(valid), "test": np.sort(test)}


__all__ = ["SPLITS", "SurvivalTable", "load_survival_table", "read_csv", "split_indices"]
