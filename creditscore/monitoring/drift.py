"""Drift between the clients the model was trained on and the clients it scores now.

- `psi`: population stability index of the score, on quantile bins of the reference scores;
  `psi_band` reads it with the usual credit-risk rule of thumb (stable < 0.1 <= watch <= 0.25 < act).
- `feature_drift`: evidently's `DataDriftPreset` on a seeded sample of rows (chosen features plus the score),
  saved as an HTML report and summarised as a plain dict (per column: score, method, threshold, drifted).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.errors import DataError, ParamsError
from creditscore.io import atomic_file

EPSILON = 1e-4          # proportion given to an empty bin, so that the log stays finite
STABLE, WATCH = 0.1, 0.25
DIGITS = 6              # metrics are rounded so that reruns give identical files


def _finite(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise DataError(f"psi: {name} scores are empty")
    if not np.isfinite(values).all():
        raise DataError(f"psi: {name} scores contain {int((~np.isfinite(values)).sum())} missing or infinite values")
    return values


def psi(reference_scores, current_scores, bins: int = 10) -> float:
    """Population stability index: sum over bins of (cur% - ref%) * ln(cur% / ref%).

    Bin edges are the reference's quantiles (ties merged, so heavily tied scores such as isotonic-calibrated
    ones give fewer bins); the outer bins are open, so current scores outside the reference range are counted.
    An empty bin counts as a proportion of EPSILON.
    """
    if bins < 2:
        raise ParamsError(f"psi: bins must be >= 2, got {bins}")
    reference, current = _finite(reference_scores, "reference"), _finite(current_scores, "current")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1))[1:-1])
    n_bins = len(edges) + 1
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=n_bins) / reference.size
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=n_bins) / current.size
    ref, cur = np.maximum(ref, EPSILON), np.maximum(cur, EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def characteristic_psi(reference, current, bins: int = 10) -> float:
    """PSI of one characteristic (a model feature) that may be missing: missing values are a bin of their own,
    the others are binned as `psi` bins scores (the reference's quantiles, open outer bins). A side with no value
    at all counts its whole mass in the missing bin."""
    if bins < 2:
        raise ParamsError(f"psi: bins must be >= 2, got {bins}")
    reference = np.asarray(reference, dtype=np.float64).ravel()
    current = np.asarray(current, dtype=np.float64).ravel()
    if reference.size == 0 or current.size == 0:
        raise DataError("psi: reference and current values must both have rows")
    present = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1))[1:-1]) if present.size else np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        known = values[~np.isnan(values)]
        counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=len(edges) + 1)
        return np.append(counts, values.size - known.size) / values.size

    ref, cur = np.maximum(shares(reference), EPSILON), np.maximum(shares(current), EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def stability_table(reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], bins: int = 10) -> list[dict]:
    """The characteristic stability table: PSI, its band and the missing shares of each column (the model's
    features and the score), training clients against current applications, in the order given."""
    rows = []
    for column in columns:
        ref, cur = reference[column].to_numpy().astype(np.float64), current[column].to_numpy().astype(np.float64)
        value = characteristic_psi(ref, cur, bins)
        rows.append({"characteristic": column, "psi": round(value, DIGITS), "band": psi_band(value),
                     "missing_reference": round(float(np.isnan(ref).mean()), DIGITS),
                     "missing_current": round(float(np.isnan(cur).mean()), DIGITS)})
    return rows


def psi_band(value: float) -> str:
    """stable (< 0.1), watch (0.1 to 0.25 inclusive), act (> 0.25)."""
    if value < STABLE:
        return "stable"
    return "watch" if value <= WATCH else "act"


def _sample(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """At most n rows, drawn without replacement with a fixed seed, in their original order."""
    if frame.height <= n:
        return frame
    index = np.sort(np.random.default_rng(seed).choice(frame.height, size=n, replace=False))
    return frame[index]


_REPORT_ID = re.compile(r'metric_([0-9a-f]{32})(?![0-9A-Za-z])|"id": "([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})"')


def stable_html(html: str) -> str:
    """Evidently's HTML with its random widget and report ids renamed in order of appearance (byte-reproducible).

    Only ids the report itself declares (`metric_<hex>` names, `"id": "<uuid>"` fields) are renamed, everywhere
    they occur, so references between widgets still match; constants of the bundled JavaScript are left alone.
    """
    ids = list(dict.fromkeys(a or b for a, b in _REPORT_ID.findall(html)))
    if not ids:
        return html
    renamed = {}
    for n, old in enumerate(ids):
        digest = hashlib.md5(f"drift-report-id-{n}".encode()).hexdigest()
        renamed[old] = digest if len(old) == 32 else "-".join(
            (digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:]))
    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    return pattern.sub(lambda m: renamed[m.group(0)], html)


def _is_p_value(method: str) -> bool:
    return "p_value" in method.replace("-", "_").lower()


def feature_drift(reference: pl.DataFrame, current: pl.DataFrame, features: list[str], report: Path | None,
                  *, score: str = "score", reference_sample: int = 5000, current_sample: int = 5000,
                  seed: int = 42) -> dict:
    """Run evidently's DataDriftPreset on `features` + `score`, on seeded samples of both frames.

    Evidently picks the test per column from the reference size and the number of distinct values (above 1,000
    reference rows: normed Wasserstein distance for numeric columns, Jensen-Shannon for those with <= 5 values;
    below: Kolmogorov-Smirnov or chi-squared p-values). A column drifts when evidently's own test for it fails,
    or when it has no value at all in one sample (e.g. the API stopped sending it); evidently ignores missing
    values, so each column also reports its share of missing values on both sides.
    `n_drifted` and `share_drifted` count the features only; the score's verdict is reported apart.
    If `report` is given the HTML report is written there atomically.
    """
    from evidently import DataDefinition, Dataset, Report  # ~4-8 s to import: only when drift is computed
    from evidently.presets import DataDriftPreset

    columns = [*features, score]
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"feature_drift: {name} data has no column {missing[0]}")
    if reference.height == 0 or current.height == 0:
        raise DataError("feature_drift: reference and current data must both have rows")
    ref = _sample(reference.select(columns), reference_sample, seed).cast(pl.Float64)
    cur = _sample(current.select(columns), current_sample, seed + 1).cast(pl.Float64)
    missing_share = {c: (ref[c].null_count() / ref.height, cur[c].null_count() / cur.height) for c in columns}
    if missing_share[score] != (0.0, 0.0):
        raise DataError(f"feature_drift: column {score} has missing values")
    # A column with no value at all on one side cannot be tested; it has drifted (unless empty on both sides).
    untestable = {c: sides for c, sides in missing_share.items() if 1.0 in sides}
    tested = [c for c in columns if c not in untestable]

    definition = DataDefinition(numerical_columns=tested)
    snapshot = Report([DataDriftPreset(columns=tested)], include_tests=True).run(
        Dataset.from_pandas(cur.select(tested).to_pandas(), data_definition=definition),  # evidently: current first,
        Dataset.from_pandas(ref.select(tested).to_pandas(), data_definition=definition))  # then reference
    result = snapshot.dict()

    drifted = {}
    for test in result["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if str(params.get("type", "")).endswith(":ValueDrift"):
            status = test["status"]
            drifted[params["column"]] = str(getattr(status, "value", status)) == "FAIL"
    per_column = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift"):
            continue
        column, method = config["column"], str(config["method"])
        value = round(float(metric["value"]), DIGITS)
        entry = {"drift_score": value, "method": method, "threshold": config["threshold"],
                 "drifted": bool(drifted[column])}
        if _is_p_value(method):
            entry["p_value"] = value
        per_column[column] = entry
    for column, (on_ref, on_cur) in untestable.items():
        sides = [side for side, share in (("reference", on_ref), ("current", on_cur)) if share == 1.0]
        per_column[column] = {"drift_score": None, "method": f"no values in the {' and '.join(sides)} sample",
                              "threshold": None, "drifted": len(sides) == 1}
    for column, (on_ref, on_cur) in missing_share.items():
        per_column[column]["missing_share"] = {"reference": round(on_ref, DIGITS), "current": round(on_cur, DIGITS)}
    absent = [c for c in columns if c not in per_column]
    if absent:
        raise RuntimeError(f"feature_drift: evidently returned no drift result for column {absent[0]}")

    if report is not None:
        with atomic_file(Path(report)) as tmp:
            tmp.write_text(stable_html(snapshot.get_html_str(as_iframe=False)), encoding="utf-8")
    n_drifted = sum(per_column[f]["drifted"] for f in features)
    return {"features": {f: per_column[f] for f in features}, "score": per_column[score],
            "n_features": len(features), "n_drifted": int(n_drifted),
            "share_drifted": round(n_drifted / len(features), DIGITS) if features else 0.0,
            "n_reference_sample": ref.height, "n_current_sample": cur.height}


def drift_summary(reference: pl.DataFrame, current: pl.DataFrame, features: list[str], report: Path | None,
                  *, reference_sample: int = 5000, current_sample: int = 5000, seed: int = 42,
                  psi_bins: int = 10) -> dict:
    """What the drift stage computes: score PSI on every row, evidently on seeded samples, one plain dict.

    Both frames hold the feature columns and `score` (the calibrated probability of default).
    """
    value = psi(reference["score"].to_numpy(), current["score"].to_numpy(), psi_bins)  # cheap checks first
    summary = feature_drift(reference, current, features, report, reference_sample=reference_sample,
                            current_sample=current_sample, seed=seed)
    return {**summary, "score_psi": round(value, DIGITS), "score_psi_band": psi_band(value),
            "stability": stability_table(reference, current, [*features, "score"], psi_bins),
            "n_reference": reference.height, "n_current": current.height}
