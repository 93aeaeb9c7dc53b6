"""The engineer stage in client ranges against the whole population at once: time and peak memory, side by side.

Generates and prepares the synthetic population (full Kaggle scale by default), then runs the engineer stage with
`engineer.chunk_clients` set to every client at once and to smaller ranges, alternating, each in its own process,
and checks that every setting writes the same matrices. Results: `benchmarks/results/ranges.json`, one entry per
size (a run of one size keeps the others), so that the peak of a range can be compared across sizes.

    python -m benchmarks.bench_ranges                          # 307,511 labelled clients, 3 repeats
    python -m benchmarks.bench_ranges --clients 1000000 --repeats 1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys

from benchmarks.common import GENERATE, PREPARE, WORK, measure, median_run, python, write_results
from creditscore.config import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "ranges.json"
RUN = ("import sys, json; from pathlib import Path; from creditscore.config import load_params; "
       "from stages.engineer import engineer; from creditscore.params import overridden; p = overridden(load_params().engineer, {'chunk_clients': int(sys.argv[3])}); "
       "engineer(Path(sys.argv[1]), Path(sys.argv[2]), p, 42, load_params().protected)")


SPLITS = ("train", "holdout", "test")


def same_values(folder, reference) -> bool:
    """The same spec and the same matrices, value for value (missing equal to missing). The Parquet bytes can differ
    with the ranges: the file streamed from range parts has other row groups than one written at once."""
    import polars as pl

    if (folder / "spec.json").read_text() != (reference / "spec.json").read_text():
        return False
    return all(pl.read_parquet(folder / f"{s}.parquet").equals(pl.read_parquet(reference / f"{s}.parquet"),
                                                                null_equal=True) for s in SPLITS)


def digest(folder) -> str:
    """One hash of the three matrices and the spec (their bytes)."""
    h = hashlib.sha256()
    for name in ("train.parquet", "holdout.parquet", "test.parquet", "spec.json"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=307_511)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, nargs="+", default=[10**9, 100_000, 50_000])
    args = parser.parse_args()
    work = WORK / "ranges"
    shutil.rmtree(work, ignore_errors=True)
    raw, prepared = work / "raw", work / "prepared"
    measure(python(GENERATE, raw, args.clients))
    measure(python(PREPARE, raw, prepared, work / "prepare.json"))
    shutil.rmtree(raw)
    runs = {c: [] for c in args.chunks}
    digests = {}
    for _ in range(args.repeats):
        for chunk in args.chunks:  # alternating, so that a noisy minute hits every setting
            out = work / f"features-{chunk}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            runs[chunk].append(measure(python(RUN, prepared, out, chunk)))
            digests[chunk] = digest(out)
    values = {c: same_values(work / f"features-{c}", work / f"features-{args.chunks[0]}") for c in args.chunks[1:]}
    whole = args.chunks[0]
    out = {"labelled_clients": args.clients, "repeats": args.repeats,
           "settings": {("one range" if c >= 10**9 else f"{c} clients per range"):
                        {**median_run(runs[c]), "runs": runs[c], "digest": digests[c]} for c in args.chunks},
           "same_values": all(values.values()), "same_bytes": len(set(digests.values())) == 1}
    for c in args.chunks[1:]:
        key = f"{c} clients per range"
        out["settings"][key]["time_ratio_vs_one_range"] = round(median_run(runs[c])["seconds"]
                                                                / median_run(runs[whole])["seconds"], 3)
        out["settings"][key]["memory_ratio_vs_one_range"] = round(median_run(runs[c])["peak_mib"]
                                                                  / median_run(runs[whole])["peak_mib"], 3)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    sizes = {**kept.get("sizes", {}), str(args.clients): out}  # each size is one run; the others are kept
    write_results(RESULTS, {"sizes": dict(sorted(sizes.items(), key=lambda kv: int(kv[0])))})
    print(json.dumps(out, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
