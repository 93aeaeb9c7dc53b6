"""DVC stage `reference`: the serving reference the API loads beside the bundle (typical values, labels, the
model's drivers, the key fields' distributions, similar clients, the known clients).

Its own stage, so that a change to an explanation figure does not rebuild what the API serves: it reads the
explain stage's complete global importance, which a figure change leaves byte-identical.
"""
from __future__ import annotations

import argparse
import json
import sys

from creditscore.config import load_params, resolve
from creditscore.explanation.reference import build_reference
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
    args = parser.parse_args(argv)
    explain = load_params().explain
    bundle = load(resolve(args.bundle), Bundle)
    importance = json.loads(resolve(args.importance).read_text(encoding="utf-8"))
    path = resolve(args.reference)
    with atomic_outputs(path, checksum_path(path)) as (served, digest):
        reference = build_reference(resolve(args.features), resolve(args.predictions), resolve(args.prepared), bundle,
                                    importance, list(explain.key_fields), list(explain.age_bands))
        save(reference, served, checksum_at=digest)
    _log(f"wrote {args.reference}: {len(reference.clients['ids']):,} known clients, "
         f"{len(reference.population['granted']):,} training clients summarised")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("reference", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
