"""DVC stage `generate`: write the synthetic Kaggle files when data.source is `synthetic`.

With `data.source: kaggle` the stage writes only a note, so the pipeline keeps one shape
whichever source is chosen and no time is spent generating data nobody reads.
"""
from __future__ import annotations

import argparse
import sys

from creditscore.config import load_params, resolve
from creditscore.io import atomic_dir
from creditscore.stage import logger
from creditscore.stage import run as run_stage
from creditscore.synthetic.generate import generate


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the eight CSV files")
    args = parser.parse_args(argv)
    params = load_params()
    data = params.data
    with atomic_dir(resolve(args.out)) as scratch:
        if data.source == "synthetic":
            rows = generate(scratch, data.n_clients, params.seed, data.drift)
            logger("generate")(", ".join(f"{t} {n:,}" for t, n in rows.items()))
        else:
            (scratch / "NOT_GENERATED.txt").write_text(
                f"data.source is 'kaggle': prepare reads {data.raw_dir} instead of this folder.\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("generate", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
