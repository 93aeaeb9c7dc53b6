"""One convention for every DVC stage: `stage: message` log lines, and exit 1 with one line on bad input.

Bad input is what a user can fix: the project's own errors (`creditscore.errors`: params.yaml, a data file, an
artifact; each message names what to fix) and a missing input file. It ends the stage with exit code 1 and a
single line `stage: error: ...` on stderr, never a traceback. Any other exception, a ValueError from NumPy,
scikit-learn or Polars included, is a defect: it keeps its traceback and a non-zero exit.
The stages write their outputs through `creditscore.io` (a temporary file or folder renamed into place),
so a failing run leaves the previous good outputs as they were.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

from creditscore.errors import CreditScoreError

BAD_INPUT = (CreditScoreError, FileNotFoundError)


def logger(stage: str, timed: bool = False) -> Callable[[str], None]:
    """A function printing `stage: message` to stderr (with the seconds since it was made when `timed`)."""
    start = time.perf_counter()

    def log(message: str) -> None:
        suffix = f" ({time.perf_counter() - start:.1f}s)" if timed else ""
        print(f"{stage}: {message}{suffix}", file=sys.stderr, flush=True)

    return log


def progress_bar(total: int, what: str, unit: str = "fit", enabled: bool = True):
    """A progress bar on stderr for a step that takes minutes at full scale; drawn only on a terminal (so CI
    logs and `dvc repro` piped to a file get no bar lines), and never when not `enabled`."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit=unit, leave=False, disable=None if enabled else True, file=sys.stderr)


def run(stage: str, body: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a stage's body: its return code (0 when None), or 1 and one `stage: error:` line on bad input."""
    try:
        return int(body(argv) or 0)
    except BAD_INPUT as error:
        message = str(error) if not isinstance(error, FileNotFoundError) or not error.filename else \
            f"{error.filename}: file not found"
        print(f"{stage}: error: {message}", file=sys.stderr, flush=True)
        return 1
