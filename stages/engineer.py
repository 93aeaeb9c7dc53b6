"""DVC stage `engineer`: feature matrices for the training, hold-out and test clients, a spec and a manifest."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.compute import Runner, runner
from creditscore.config import load_params, resolve
from creditscore.data.schema import KEY
from creditscore.errors import DataError
from creditscore.features.build import (
    HISTORY,
    add_target_encoding,
    build_features,
    feature_groups,
    finalize,
    fit_vocabulary,
    link_column,
)
from creditscore.features.encoding import (
    encode_out_of_fold,
    encoding_key,
    encoding_keys,
    key_columns,
    key_meaning,
    target_encoded_name,
)
from creditscore.features.extras import MEANINGS
from creditscore.features.manifest import build_manifest
from creditscore.io import atomic_outputs, write_json
from creditscore.params import Engineer
from creditscore.stage import run as run_stage

SPLITS = ("train", "holdout", "test")


def _log(message: str, start: float) -> None:
    print(f"engineer: {message} ({time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)


def _scan_sorted(prepared: Path, name: str) -> pl.LazyFrame:
    """A prepared history table, checked to be sorted by its link column as build_features requires."""
    path, key = prepared / f"{name}.parquet", link_column(name)
    if not pl.read_parquet(path, columns=[key])[key].is_sorted():
        raise DataError(f"{path}: not sorted by {key}; re-run the prepare stage (dvc repro prepare)")
    return pl.scan_parquet(path)


def fit_spec(prepared: Path, params: Engineer, protected: list[str]) -> dict:
    """Vocabulary, groups and settings that define the features (no label is used). No level of a `protected`
    column is learnt, and the spec carries the list: no feature reads those columns, here or in the API."""
    tables = {name: pl.scan_parquet(prepared / f"{name}.parquet") for name in HISTORY}
    vocab = fit_vocabulary(pl.scan_parquet(prepared / "application_train.parquet"), tables,
                           params.max_levels, params.min_count)
    vocab["application"] = {c: levels for c, levels in vocab["application"].items() if c not in protected}
    return {"vocab": vocab, "groups": list(params.groups), "poly": params.poly.model_dump(), "target_encoding": {},
            "protected": list(protected)}


def _target_encode(apps: dict, spec: dict, params: Engineer, seed: int) -> pl.DataFrame | None:
    """Out-of-fold encodings of the training clients (SK_ID_CURR and one column per encoded column), and the
    full-train mapping in the spec for the hold-out and test clients; None when target encoding is off."""
    settings = params.target_encoding
    keys = encoding_keys(settings)
    if not keys:
        return None
    y = apps["train"]["TARGET"].to_numpy()
    encoded = {KEY: apps["train"][KEY]}
    for key in keys:
        values, mapping, prior = encode_out_of_fold(encoding_key(apps["train"], key), y, settings.folds,
                                                    settings.smoothing, seed, settings.min_count)
        encoded[target_encoded_name(key)] = values
        spec["target_encoding"][key] = {"mapping": mapping, "prior": prior}
    return pl.DataFrame(encoded)


def client_ranges(keys: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Consecutive SK_ID_CURR ranges (inclusive bounds) of at most `size` clients each, covering every key."""
    keys = np.sort(keys)
    return [(int(keys[i]), int(keys[min(i + size, len(keys)) - 1])) for i in range(0, len(keys), size)]


def clients_tables(tables: dict[str, pl.LazyFrame], low: int, high: int) -> dict[str, pl.LazyFrame]:
    """The history rows of the clients low..high, still sorted by their link column: a filter keeps the order,
    and the sorted key lets Parquet skip the row groups outside the range. bureau_balance follows bureau."""
    out = {name: lf.filter(pl.col(KEY).is_between(low, high)) for name, lf in tables.items() if name != "bureau_balance"}
    credits = out["bureau"].select("SK_ID_BUREAU").collect()["SK_ID_BUREAU"]
    out["bureau_balance"] = tables["bureau_balance"].filter(pl.col("SK_ID_BUREAU").is_in(credits.implode()))
    return out


def range_features(task: tuple[int, int, int], prepared: Path, out: Path, spec: dict, encoded: pl.DataFrame | None,
                   single: bool) -> dict[str, int]:
    """One task: the feature rows of every split's clients in one SK_ID_CURR range, read from the prepared Parquet
    files and written to `out` (the split's file when `single`, else one part per range); returns the row counts.

    The same function runs in this process or on a Dask worker (`compute.scheduler`)."""
    k, low, high = task
    part = {s: pl.scan_parquet(prepared / f"application_{s}.parquet").filter(pl.col(KEY).is_between(low, high))
            .collect() for s in SPLITS}
    tables = {name: pl.scan_parquet(prepared / f"{name}.parquet") for name in HISTORY}
    stacked = pl.concat([part[s].drop("TARGET", strict=False) for s in SPLITS], how="vertical")
    features = build_features(stacked.lazy(), clients_tables(tables, low, high), spec)
    bounds = np.cumsum([0] + [part[s].height for s in SPLITS])
    rows = {}
    for i, s in enumerate(SPLITS):
        frame = features.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
        if encoded is not None and s == "train":
            frame = frame.join(encoded, on=KEY, how="left", maintain_order="left")
        elif encoded is not None:
            frame = add_target_encoding(frame, part[s], spec)
        if [n for n in frame.columns if n != KEY] != spec["features"]:
            raise RuntimeError(f"engineer: clients {low}..{high}: the features differ from the spec's")
        matrix = finalize(frame, spec["features"])
        if s != "test":
            matrix = matrix.insert_column(1, part[s]["TARGET"])
        matrix.write_parquet(out / (f"{s}.parquet" if single else part_name(s, k)), compression="lz4")
        rows[s] = matrix.height
    return rows


def part_name(split: str, k: int) -> str:
    return f".{split}.part{k:04d}.parquet"


def engineer(prepared: Path, out: Path, params: Engineer, seed: int, protected: list[str],
             compute: Runner | None = None) -> dict:
    """Build and write the three feature matrices, spec.json and manifest.json; return a report.

    Clients are taken in ranges of `engineer.chunk_clients` SK_ID_CURR (the application files and every history
    table are sorted by client), one task per range, so that the memory a task holds does not grow with the number
    of clients. A client's features depend on its own rows only (the API builds one client's with the same code):
    the matrices are the same whatever the ranges and wherever the tasks run (`compute`); each range's rows are
    written as they are made, then streamed into one file per split in client order.
    """
    start = time.perf_counter()
    compute = compute or Runner()
    spec = fit_spec(prepared, params, list(protected))
    _log("vocabulary fitted", start)
    read = dict.fromkeys(c for k in encoding_keys(params.target_encoding) for c in key_columns(k))
    columns = [KEY, "TARGET", *read]
    apps = {s: pl.read_parquet(prepared / f"application_{s}.parquet",
                               columns=columns if s == "train" else [KEY]) for s in SPLITS}
    for s in SPLITS:
        if not apps[s][KEY].is_sorted():
            raise DataError(f"{prepared / f'application_{s}.parquet'}: not sorted by {KEY}; re-run the prepare "
                             "stage (dvc repro prepare)")
    for name in HISTORY:
        _scan_sorted(prepared, name)
    encoded = _target_encode(apps, spec, params, seed)
    groups = feature_groups(spec)
    groups.update({target_encoded_name(c): "target_encoding" for c in spec["target_encoding"]})
    spec["features"] = list(groups)
    ranges = client_ranges(np.concatenate([apps[s][KEY].to_numpy() for s in SPLITS]), params.chunk_clients)
    single = len(ranges) == 1
    tasks = [(k, low, high) for k, (low, high) in enumerate(ranges)]
    shared = {"prepared": prepared, "out": out, "spec": spec, "encoded": encoded, "single": single}
    compute.map(range_features, tasks, shared, progress=("client ranges", "range", 1))
    if not single:  # the ranges in client order: each split's rows in their order, streamed to one file
        for s in SPLITS:
            parts = [out / part_name(s, k) for k, _, _ in tasks]
            pl.concat([pl.scan_parquet(p) for p in parts]).sink_parquet(out / f"{s}.parquet", compression="lz4")
            for p in parts:
                p.unlink()
    _log(f"{len(spec['features'])} features for {sum(a.height for a in apps.values()):,} clients in {len(ranges)} "
         "client range(s)", start)
    (out / "spec.json").write_text(json.dumps(spec, indent=1) + "\n")
    meanings = {**MEANINGS, **{target_encoded_name(k): ("application", key_meaning(k)) for k in spec["target_encoding"]}}
    manifest = build_manifest(spec["features"], groups, meanings)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    _log("written", start)
    per_group = {g: sum(1 for n in spec["features"] if groups.get(n) == g) for g in set(groups.values())}
    return {"n_features": len(spec["features"]), "features_per_group": per_group,
            "clients": {s: apps[s].height for s in SPLITS}, "seconds": round(time.perf_counter() - start, 1)}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="folder of Parquet tables written by prepare")
    parser.add_argument("--out", required=True, help="folder for the feature matrices, spec and manifest")
    parser.add_argument("--metrics", required=True, help="JSON file of feature counts")
    args = parser.parse_args(argv)
    params = load_params()  # engineer.groups is checked there (creditscore.params)
    with runner(params) as compute, atomic_outputs(resolve(args.out), resolve(args.metrics)) as (out, metrics):
        out.mkdir()
        report = engineer(resolve(args.prepared), out, params.engineer, params.seed, params.protected, compute)
        report.pop("seconds")  # timings belong to benchmarks, not to metrics compared across runs
        write_json(metrics, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("engineer", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
