"""DVC stage `prepare`: validate the eight raw tables and write typed Parquet plus a hold-out split."""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import polars as pl

from creditscore.config import load_params, resolve
from creditscore.data.cleaning import (
    check_disjoint,
    check_target,
    check_unique,
    clean_table,
    drop_orphans,
    split_holdout,
)
from creditscore.data.raw import read_table
from creditscore.data.schema import HISTORY_TABLES, TABLES
from creditscore.errors import DataError
from creditscore.io import atomic_outputs, write_json
from creditscore.stage import logger
from creditscore.stage import run as run_stage

_log = logger("prepare")


def _load(raw_dir: Path, name: str, report: dict) -> pl.DataFrame:
    table = TABLES[name]
    start = time.perf_counter()
    frame = read_table(raw_dir, table)
    if table.key:
        check_unique(frame, table.key, table.file)
    frame, cleaning = clean_table(frame, table)
    report["tables"][name] = {"rows_read": frame.height, **cleaning}
    _log(f"{table.file}: {frame.height:,} rows read in {time.perf_counter() - start:.1f}s")
    return frame


def prepare(raw_dir: Path, out_dir: Path, holdout_size: float, seed: int) -> dict:
    """Read, clean and validate every table from raw_dir; write Parquet files into out_dir."""
    report: dict = {"tables": {}, "warnings": []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = _load(raw_dir, "application_train", report)
        check_target(train, "application_train.csv")
        test = _load(raw_dir, "application_test", report)
        check_disjoint(train, test)
        fit, holdout = split_holdout(train, holdout_size, seed)
        # every application file sorted by client, as the engineer stage's client ranges need (the split sorts
        # the labelled ones; Kaggle's test file is already sorted)
        test = test.sort("SK_ID_CURR", maintain_order=True)
        for name, frame in (("application_train", fit), ("application_holdout", holdout), ("application_test", test)):
            frame.write_parquet(out_dir / f"{name}.parquet")
        parents = {"application": pl.concat([train["SK_ID_CURR"], test["SK_ID_CURR"]])}
        del train, test, fit, holdout
        for name in HISTORY_TABLES:
            frame = _load(raw_dir, name, report)
            parent, column = TABLES[name].parent
            frame, orphans = drop_orphans(frame, column, parents[parent])
            report["tables"][name]["orphans_dropped"] = orphans
            if orphans:
                _log(f"{TABLES[name].file}: {orphans:,} rows point at unknown {column} (dropped)")
            if name == "bureau":
                parents["bureau"] = frame["SK_ID_BUREAU"]
            # sorted by the link column (stable): aggregations over sorted keys are deterministic
            frame.sort(column, maintain_order=True).write_parquet(out_dir / f"{name}.parquet")
    report["warnings"] = [str(w.message) for w in caught]
    for message in report["warnings"]:
        _log(f"warning: {message}")
    report["split"] = _split_summary(out_dir)
    return report


def _split_summary(out_dir: Path) -> dict:
    summary = {}
    for name in ("application_train", "application_holdout"):
        target = pl.read_parquet(out_dir / f"{name}.parquet", columns=["TARGET"])["TARGET"]
        summary[name] = {"clients": target.len(), "target_rate": round(float(target.mean()), 6)}
    summary["application_test"] = {"clients": pl.scan_parquet(out_dir / "application_test.parquet").select(
        pl.len()).collect().item()}
    return summary


def run(raw_dir: Path, out_dir: Path, metrics: Path, source: str, holdout_size: float, seed: int) -> int:
    """Prepare the tables; on bad input print one error line, leave no output and return 1."""
    _log(f"reading {source} data from {raw_dir}")
    try:
        with atomic_outputs(out_dir, metrics) as (out, metrics_path):
            out.mkdir()
            report = prepare(raw_dir, out, holdout_size, seed)
            write_json(metrics_path, {"source": source, **report})
    except DataError as error:
        print(f"prepare: error: {error}", file=sys.stderr)
        return 1
    return 0


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", required=True, help="folder written by the generate stage")
    parser.add_argument("--out", required=True, help="folder for the Parquet tables")
    parser.add_argument("--metrics", required=True, help="JSON file of row counts and data-quality figures")
    args = parser.parse_args(argv)
    params = load_params()
    data = params.data
    raw_dir = resolve(args.synthetic if data.source == "synthetic" else data.raw_dir)
    return run(raw_dir, resolve(args.out), resolve(args.metrics), data.source, data.holdout_size, params.seed)


def main(argv: list[str] | None = None) -> int:
    return run_stage("prepare", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
