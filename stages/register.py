"""DVC stage `register`: log the served model to MLflow, give it `champion` or `challenger` by the gates, write the model card.

The decision rule is `creditscore.modelling.registry`. The decision, its figures and the registry version
are written to `metrics/register.json` and to the model card, which this stage renders last, from every
stage's metrics. A rerun of an unchanged pipeline finds the version of the same bundle (its SHA-256) and
writes the decision made then, so `dvc repro --force` registers nothing twice and changes no output.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.config import load_params, resolve
from creditscore.explanation.modelcard import render_model_card
from creditscore.io import atomic_outputs, write_json
from creditscore.modelling import registry, tracking
from creditscore.params import Params
from creditscore.serving.artifacts import checksum_path
from creditscore.serving.bundle import Bundle, load
from creditscore.stage import logger
from creditscore.stage import run as run_stage

CARD_METRICS = ("prepare", "engineer", "probe", "train", "threshold", "explain", "drift", "performance")  # deps
_log = logger("register")


def register(bundle_path: Path, features: Path, predictions: Path, metrics: dict, params: Params) -> dict:
    """Register the bundle's model once and decide its alias; returns the decision as written to metrics."""
    spec = params.register_
    bundle = load(bundle_path, Bundle)
    digest = checksum_path(bundle_path).read_text().split()[0]
    hold = pl.read_parquet(predictions / "holdout.parquet")
    holdout = registry.fingerprint(hold["SK_ID_CURR"].to_numpy(), hold["TARGET"].to_numpy())
    figures = registry.gate_figures(metrics["train"], metrics["threshold"], metrics["explain"],
                                    spec.gates.fairness_attributes)
    name = spec.registered_model
    tracking.start(params.train.mlflow.experiment)
    for version in tracking.versions(name):
        if version.tags.get("bundle_sha256") == digest and "decision" in version.tags:
            _log(f"this bundle is already {name} version {version.version}: the decision made then stands")
            return json.loads(version.tags["decision"])
    champion = tracking.alias_version(name, "champion")
    decision = registry.decide(figures, spec.gates.model_dump(exclude={"fairness_attributes"}), spec.margin, holdout,
                               None if champion is None else champion.tags)
    x_example = pl.read_parquet(features / "train.parquet", n_rows=50).select(bundle.features).to_numpy()
    version = tracking.log_final(bundle.pipeline, tracking.as_frame(x_example.astype(np.float32), bundle.features),
                                 {"holdout_auc": figures["holdout_auc"], "holdout_ece": figures["holdout_ece"],
                                  "holdout_cost_per_client": figures["holdout_cost_per_client"],
                                  "fairness_gap": figures["fairness_gap"]},
                                 {"model": bundle.model}, name, {"n_features": str(len(bundle.features))})
    kept = None if champion is None else int(champion.version)
    result = {"registered_model": name, "version": int(version), "alias": decision["alias"],
              "reason": decision["reason"], "gates": decision["gates"], "comparison": decision["comparison"],
              "champion_before": kept, "champion_after": int(version) if decision["alias"] == "champion" else kept,
              "holdout_fingerprint": holdout, "bundle_sha256": digest}
    stored = json.dumps(result, sort_keys=True)
    tracking.tag_version(name, version, {"holdout_cost_per_client": str(figures["holdout_cost_per_client"]),
                                         "holdout_fingerprint": holdout, "bundle_sha256": digest, "decision": stored})
    tracking.set_alias(name, decision["alias"], version)
    _log(f"{name} version {version} is @{decision['alias']}: {decision['reason']}")
    return json.loads(stored)  # exactly what a rerun of the same bundle reads back from the registry


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--features", required=True, help="engineer output (an input example for MLflow)")
    parser.add_argument("--predictions", required=True, help="train output (the hold-out's clients and labels)")
    parser.add_argument("--metrics-dir", required=True, help="folder of every stage's metrics JSON")
    parser.add_argument("--figures", required=True, help="the explain stage's figures (linked from the card)")
    parser.add_argument("--scorecard", required=True, help="the train stage's scorecard folder (its table)")
    parser.add_argument("--card", required=True, help="model card (markdown)")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    folder = resolve(args.metrics_dir)
    metrics = {name: json.loads((folder / f"{name}.json").read_text()) for name in CARD_METRICS}
    result = register(resolve(args.bundle), resolve(args.features), resolve(args.predictions), metrics, params)
    table = resolve(args.scorecard) / "table.csv"
    rows = pl.read_csv(table).to_dicts() if table.exists() else []
    with atomic_outputs(resolve(args.metrics), resolve(args.card)) as (metrics_path, card):
        write_json(metrics_path, result)
        card.write_text(render_model_card(params, {**metrics, "register": result, "scorecard_table": rows},
                                          figures_dir=Path(args.figures), card_dir=Path(args.card).parent),
                        encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("register", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
