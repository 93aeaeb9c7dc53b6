"""DVC stage `drift`: compare the clients scored now with the training clients (features and calibrated score).

Reference: the training clients (`train.parquet`) with their calibrated out-of-fold scores. Current: the
`application_test` clients with their calibrated scores, or, when an inference log with rows is given (`--log`
or `drift.log`), the requests the API logged. Columns: the `drift.top_features` most important model features
of the explain stage's global ranking, plus the score. Writes an evidently HTML report and metrics/drift.json;
when the share of drifted features reaches `drift.share_alert` or the score PSI exceeds `drift.psi_alert` it
prints one alert line, and fails (exit 1) only with `drift.fail_on_alert`. Bad input: one error line naming the
file and column, exit 1 (the convention of every stage, `creditscore/stage.py`), no output written.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import polars as pl

from creditscore.config import load_params, resolve
from creditscore.data.schema import KEY
from creditscore.decision.calibration import calibrate
from creditscore.errors import ArtifactError, DataError
from creditscore.io import atomic_outputs, write_json
from creditscore.monitoring.drift import drift_summary
from creditscore.monitoring.inference_log import describe, is_url, logged_rows, read_features
from creditscore.params import Drift
from creditscore.serving.bundle import Bundle, load
from creditscore.stage import logger
from creditscore.stage import run as run_stage

_log = logger("drift")


def _read(path: Path, columns: list[str]) -> pl.DataFrame:
    """The given columns of a Parquet file, or a DataError naming the file and the first missing column."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as error:  # any unreadable file is bad input
        raise DataError(f"{path}: not a readable Parquet file ({error})") from error
    missing = [c for c in columns if c not in schema]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{path}: column {missing[0]} missing{more}")
    return pl.read_parquet(path, columns=columns)


def _scored(features: Path, predictions: Path, names: list[str], calibration: dict) -> pl.DataFrame:
    """Feature columns of `features` joined to the calibrated probability of `predictions`, by client."""
    frame = _read(features, [KEY, *names])
    scores = _read(predictions, [KEY, "proba"])
    if scores[KEY].is_duplicated().any():
        raise DataError(f"{predictions}: column {KEY} has duplicate clients")
    joined = frame.join(scores, on=KEY, how="left")
    absent = joined["proba"].null_count()
    if absent:
        raise DataError(f"{predictions}: column proba missing for {absent:,} of the {frame.height:,} clients "
                         f"of {features}")
    score = calibrate(joined["proba"].to_numpy(), calibration)
    return joined.select(names).with_columns(pl.Series("score", score, dtype=pl.Float64))


def load_bundle(path: Path) -> tuple[list[str], dict]:
    """The model's feature list and its calibration, from the served bundle."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        bundle = load(path, Bundle)
    except ArtifactError as error:
        raise DataError(str(error)) from None
    return list(bundle.features), bundle.calibration


def top_features(importance: Path, model_features: list[str], k: int) -> list[str]:
    """The k most important model features of the explain stage's global ranking, most important first."""
    if not importance.is_file():
        raise DataError(f"{importance}: file not found")
    try:
        ranking = json.loads(importance.read_text(encoding="utf-8"))["global"]
        names = [row["feature"] for row in ranking]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{importance}: expected a 'global' list of {{'feature': ...}} entries ({error!r})") from error
    known = set(model_features)
    chosen = list(dict.fromkeys(n for n in names if n in known))[:k]
    if not chosen:
        raise DataError(f"{importance}: no feature of the 'global' ranking is a feature of the model")
    return chosen


def alert_line(metrics: dict) -> str:
    share = f"{metrics['n_drifted']}/{metrics['n_features']} features drifted ({metrics['share_drifted']:.0%})"
    psi = f"score PSI {metrics['score_psi']:.2f} ({metrics['score_psi_band']})"
    if metrics["alert"]:
        return f"DRIFT ALERT: {share}, {psi} — retrain or investigate"
    return f"no drift alert: {share}, {psi}; current data {metrics['current_source']} ({metrics['n_current']:,} rows)"


def run(features: Path, predictions: Path, bundle: Path, importance: Path, log: Path | str | None, report: Path,
        metrics_path: Path, params: Drift, seed: int) -> int:
    """Compute drift and write the report and the metrics; return the exit code (1 on an alert with
    `drift.fail_on_alert`, else 0). Bad input raises an DataError naming the file and column; nothing is written.
    """
    with atomic_outputs(report, metrics_path) as (tmp_report, tmp_metrics):
        model_features, calibration = load_bundle(bundle)
        names = top_features(importance, model_features, params.top_features)
        reference = _scored(features / "train.parquet", predictions / "oof.parquet", names, calibration)
        source, current = "application_test", None
        if log is not None:
            try:
                n_logged = logged_rows(log)
            except ValueError as error:
                raise DataError(str(error)) from error
            if n_logged:
                try:
                    current, source = read_features(log, names), "inference_log"
                except ValueError as error:
                    raise DataError(str(error)) from error
            else:
                _log(f"{describe(log)}: no logged application yet; comparing with application_test instead")
        if current is None:
            current = _scored(features / "test.parquet", predictions / "test.parquet", names, calibration)
        summary = drift_summary(reference, current, names, tmp_report, reference_sample=params.reference_sample,
                                current_sample=params.current_sample, seed=seed)
        reasons = []
        if summary["share_drifted"] >= params.share_alert:
            reasons.append("share_drifted")
        if summary["score_psi"] > params.psi_alert:
            reasons.append("score_psi")
        score_drift = summary.pop("score")
        metrics = {**summary, "score_drift": score_drift, "alert": bool(reasons), "alert_reasons": reasons,
                   "current_source": source, "top_features": names}
        write_json(tmp_metrics, metrics)
    _log(alert_line(metrics))
    return 1 if metrics["alert"] and params.fail_on_alert else 0


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="engineer output (train.parquet, test.parquet)")
    parser.add_argument("--predictions", required=True, help="train output (oof.parquet, test.parquet)")
    parser.add_argument("--bundle", required=True, help="the served bundle (features, calibration)")
    parser.add_argument("--importance", required=True, help="explain metrics with the global SHAP ranking")
    parser.add_argument("--log", default=None, help="inference log: a SQLite file or a postgresql:// URL (the API's "
                        "DATABASE_URL); overrides drift.log")
    parser.add_argument("--report", required=True, help="evidently HTML report")
    parser.add_argument("--metrics", required=True, help="JSON drift metrics")
    args = parser.parse_args(argv)
    params = load_params()
    section = params.drift
    log = args.log if args.log is not None else section.log
    return run(resolve(args.features), resolve(args.predictions), resolve(args.bundle), resolve(args.importance),
               (log if is_url(log) else resolve(log)) if log else None, resolve(args.report), resolve(args.metrics),
               section, params.seed)


def main(argv: list[str] | None = None) -> int:
    return run_stage("drift", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
