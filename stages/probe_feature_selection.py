"""DVC stage `probe-feature-selection`: keep the features whose importance beats random probes."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from creditscore.compute import Runner, runner  # noqa: E402
from creditscore.config import load_params, resolve  # noqa: E402
from creditscore.errors import DataError
from creditscore.io import atomic_outputs, write_json  # noqa: E402
from creditscore.modelling.leaves import MIN_LEAVES, leaf_floor  # noqa: E402
from creditscore.modelling.sampling import stratified_sample  # noqa: E402
from creditscore.modelling.selection import SETS, candidate_sets, guarded_choice, probe_runs, validate_sets  # noqa: E402
from creditscore.params import Probe  # noqa: E402
from creditscore.stage import logger  # noqa: E402
from creditscore.stage import run as run_stage

_log = logger("probe-feature-selection")


def training_matrix(features_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The training clients' features (float32, NaN for missing), labels and feature names."""
    names = json.loads((features_dir / "spec.json").read_text())["features"]
    train = pl.read_parquet(features_dir / "train.parquet")
    return train.select(names).to_numpy().astype(np.float32), train["TARGET"].to_numpy(), names


def plot_importances(path: Path, names: list[str], importance: np.ndarray, share: np.ndarray,
                     threshold: float, min_share: float, top: int = 40) -> None:
    """Mean gain importance of the top features against the mean probe threshold."""
    order = np.argsort(-importance)[:top][::-1]
    fig, ax = plt.subplots(figsize=(9, 11))
    colours = ["#1b7837" if share[i] >= min_share else "#bbbbbb" for i in order]
    ax.barh([names[i] for i in order], importance[order], color=colours)
    ax.axvline(threshold, color="#b2182b", linestyle="--", label=f"mean probe threshold ({threshold:.1f})")
    ax.set_xlabel("mean gain importance over runs")
    ax.set_title("Feature importance against random probes (green: beats the probes)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def probe_select(features_dir: Path, params: Probe, model: dict, seed: int,
                 compute: Runner | None = None) -> tuple[dict, dict]:
    """Run the probes and the out-of-sample guard; return the selection file's content and the metrics."""
    x, y, names = training_matrix(features_dir)
    n_clients = len(y)
    sample = stratified_sample(n_clients, y, params.sample or n_clients, seed)
    x, y = x[sample], y[sample]
    if len(sample) < n_clients:
        _log(f"selecting on a stratified sample of {len(sample)} of the {n_clients} training clients (probe.sample)")
    # the smallest fit is a probe run's training folds inside the guard's outer training part (or its sample)
    outer_share = 1.0 - 1.0 / params.validation_folds
    if params.guard_sample is not None:
        outer_share = min(outer_share, params.guard_sample / len(y))
    floored = leaf_floor(model, y, outer_share * (1.0 - 1.0 / params.folds))
    changed = {k: round(v, 3) for k, v in floored.items() if model.get(k) != v}
    if changed:
        _log(f"{len(y)} clients: the probe model's leaf floor lowered to {changed} (so that a tree can grow "
             f"{MIN_LEAVES} leaves on the smallest fit)")
    model = floored
    tolerance = params.tolerance
    check = validate_sets(x, y, params, model, seed, log=_log, compute=compute)
    runs = probe_runs(x, y, params, model, compute)
    sets = candidate_sets(names, runs, params.min_share)
    served = guarded_choice(check["auc"], tolerance, {s: len(v) for s, v in sets.items()})
    kept = sets[served]
    _log("out-of-sample AUC: " + ", ".join(f"{s} {check['auc'][s]:.4f}" for s in SETS) + f"; serving '{served}'")
    metrics = {"n_clients": len(sample), "n_training_clients": n_clients, "n_features_in": len(names),
               "n_features_kept": len(kept), "n_features_probe": len(sets["probe"]),
               "n_features_used": len(sets["used"]), "served_set": served, "tolerance": tolerance,
               "runs": runs["runs"], "rule": params.rule, "mean_probe_threshold": round(runs["mean_threshold"], 3),
               "validation_folds": params.validation_folds, "guard_clients": check["clients"],
               "oos_auc": {s: round(check["auc"][s], 5) for s in SETS},
               "oos_auc_loss_vs_all": {s: round(check["auc"]["all"] - check["auc"][s], 5) for s in SETS},
               "oos_auc_loss_vs_best": {s: round(max(check["auc"][t] for t in SETS if sets[t]) - check["auc"][s], 5)
                                        for s in SETS},
               "oos_fold_auc": {s: [round(a, 5) for a in check["fold_auc"][s]] for s in SETS},
               "oos_fold_n_features": check["sizes"]}
    selection = {"features": kept, "served_set": served, "probe_features": sets["probe"], "rule": params.rule,
                 "min_share": params.min_share,
                 "share_beating_probes": dict(zip(names, np.round(runs["share_beating_probes"], 4).tolist())),
                 "mean_importance": dict(zip(names, np.round(runs["mean_importance"], 3).tolist())),
                 "mean_probe_threshold": runs["mean_threshold"]}
    return selection, metrics


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="folder written by the engineer stage")
    parser.add_argument("--out", required=True, help="JSON file of the selected features")
    parser.add_argument("--plot", required=True, help="PNG of importances against the probe threshold")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    probe = params.probe
    with runner(params) as compute:
        selection, metrics = probe_select(resolve(args.features), probe, probe.model, params.seed, compute)
    if not selection["features"]:
        raise DataError(f"{resolve(args.features) / 'spec.json'}: no features to select from")
    names = list(selection["mean_importance"])
    with atomic_outputs(resolve(args.plot), resolve(args.out), resolve(args.metrics)) as (plot, out, metrics_path):
        plot_importances(plot, names, np.array(list(selection["mean_importance"].values())),
                         np.array(list(selection["share_beating_probes"].values())), selection["mean_probe_threshold"],
                         probe.min_share)
        write_json(out, selection)
        write_json(metrics_path, metrics)
    _log(f"serving the '{metrics['served_set']}' set: {metrics['n_features_kept']} of {metrics['n_features_in']} "
         f"features (the probes alone keep {metrics['n_features_probe']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("probe-feature-selection", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
