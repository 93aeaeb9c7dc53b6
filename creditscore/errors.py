"""The project's own errors: problems a user can fix, each with a message that names what to fix.

A stage (`creditscore.stage.run`) turns these, and a missing input file, into one `stage: error: ...` line and
exit code 1. Every other exception is a defect and keeps its traceback. This module imports nothing, so any
module can raise these without pulling in the serving package or a heavy library.
"""
from __future__ import annotations


class CreditScoreError(Exception):
    """A problem in what the user gave (parameters, data, artifacts), not in the code."""


class ParamsError(CreditScoreError, ValueError):
    """params.yaml does not match its declaration; the message names the key."""


class DataError(CreditScoreError, ValueError):
    """Bad input data; the message names the file, the column and the problem."""


class ArtifactError(CreditScoreError, RuntimeError):
    """An artifact is missing or is not the one the pipeline recorded."""
