"""DVC stage `performance`: matured outcomes joined to what was scored, beside the estimate made before they matured.

Reads the test clients' calibrated scores (the served model's, through the bundle's calibration) and the matured
outcomes: `performance.outcomes` when set (a lender's CSV: SK_ID_CURR, APPLICATION_MONTH, TARGET), else the
synthetic generator's `matured_outcomes.csv`; with neither, the estimate alone. Writes the metrics and a report.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from creditscore.config import load_params, resolve
from creditscore.decision.calibration import calibrate
from creditscore.errors import DataError
from creditscore.io import atomic_outputs, write_json
from creditscore.monitoring.performance import performance, report
from creditscore.serving.bundle import Bundle, load
from creditscore.stage import logger
from creditscore.stage import run as run_stage

OUTCOME_COLUMNS = {"SK_ID_CURR": pl.Int64, "APPLICATION_MONTH": pl.Utf8, "TARGET": pl.Int64}
_log = logger("performance")


def read_outcomes(path: Path | None) -> pl.DataFrame | None:
    """The matured outcomes, checked (a missing column or a TARGET other than 0/1 names the file), or None."""
    if path is None or not path.exists():
        return None
    try:
        frame = pl.read_csv(path, schema_overrides=OUTCOME_COLUMNS)
    except pl.exceptions.PolarsError as error:
        raise DataError(f"{path}: not a readable CSV of {', '.join(OUTCOME_COLUMNS)}: {error}") from None
    missing = [c for c in OUTCOME_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]} (expected {', '.join(OUTCOME_COLUMNS)})")
    bad = frame.filter(~pl.col("TARGET").is_in([0, 1]) | pl.col("TARGET").is_null())
    if bad.height:
        raise DataError(f"{path}: column TARGET: {bad.height} value(s) other than 0 or 1 (first for client "
                        f"{bad['SK_ID_CURR'][0]})")
    return frame.select(list(OUTCOME_COLUMNS))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True, help="the train stage's predictions (test.parquet)")
    parser.add_argument("--bundle", required=True, help="the served bundle (its calibration)")
    parser.add_argument("--synthetic", required=True, help="the generate stage's folder (matured_outcomes.csv)")
    parser.add_argument("--report", required=True, help="the performance report (Markdown)")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    settings = params.performance
    bundle = load(resolve(args.bundle), Bundle)
    test = pl.read_parquet(resolve(args.predictions) / "test.parquet")
    scored = test.select("SK_ID_CURR", pl.Series("proba", calibrate(test["proba"].to_numpy(), bundle.calibration)))
    path = resolve(settings.outcomes) if settings.outcomes else (
        resolve(args.synthetic) / "matured_outcomes.csv" if params.data.source == "synthetic" else None)
    outcomes = read_outcomes(path)
    metrics = performance(scored, outcomes, settings.min_cohort_clients)
    metrics["outcomes_source"] = str(settings.outcomes or ("synthetic generator" if outcomes is not None else "none"))
    with atomic_outputs(resolve(args.report), resolve(args.metrics)) as (report_path, metrics_path):
        report_path.write_text(report(metrics), encoding="utf-8")
        write_json(metrics_path, metrics)
    realised = metrics["realised"]
    _log(f"estimated AUC {metrics['estimated']['auc']:.4f} on {metrics['clients_scored']:,} scored clients"
         + (f"; realised {realised['auc']} on {metrics['matured']:,} matured" if realised else "; nothing matured"))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("performance", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
