"""DVC stage `reference`: the serving reference the API loads beside the bundle (typical values, labels, the
model's drivers, the key fields' distributions, aggregates of similar clients), and the known clients apart.

Its own stage, so that a change to an explanation figure does not rebuild what the API serves: it reads the
explain stage's complete global importance, which a figure change leaves byte-identical.
"""
from __future__ import annotations

import argparse
import json
import sys

from creditscore.config import load_params, resolve
from creditscore.explanation.reference import build_clients, build_reference
from creditscore.io import atomic_outputs
from creditscore.serving.artifacts import checksum_path
from creditscore.serving.bundle import Bundle, load, save
from creditscore.stage import logger
from creditscore.stage import run as run_stage

_log = logger("reference")


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="folder written by the engineer stage")
    parser.add_argument("--predictions", required=True, help="folder written by the train stage")
    parser.add_argument("--prepared", required=True, help="folder written by the prepare stage")
    parser.add_argument("--bundle", required=True, help="the served bundle (threshold stage)")
    parser.add_argument("--importance", required=True, help="the explain stage's complete global importance")
    parser.add_argument("--reference", required=True, help="serving reference for the API (joblib)")
    parser.add_argument("--clients", required=True, help="the known clients the dashboard opens by id (joblib)")
    args = parser.parse_args(argv)
    explain = load_params().explain
    bundle = load(resolve(args.bundle), Bundle)
    importance = json.loads(resolve(args.importance).read_text(encoding="utf-8"))
    path, known = resolve(args.reference), resolve(args.clients)
    inputs = resolve(args.features), resolve(args.predictions), resolve(args.prepared), bundle
    with atomic_outputs(path, checksum_path(path), known, checksum_path(known)) as (served, digest, kept, kept_digest):
        reference = build_reference(*inputs, importance, list(explain.key_fields), list(explain.age_bands))
        save(reference, served, checksum_at=digest)
        clients = build_clients(*inputs, list(explain.key_fields))
        save(clients, kept, checksum_at=kept_digest)
    population = reference.population
    _log(f"wrote {args.reference}: {int(population['clients'][population['index'][(-1,) * 5]]):,} training clients "
         f"summarised in {len(population['index']):,} groups; {args.clients}: {len(clients.ids):,} known clients")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("reference", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
