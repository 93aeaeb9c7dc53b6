"""The final fits on a Dask cluster: LightGBM trained data-parallel through `lightgbm.dask` (`compute.scheduler`).

A served model is a pipeline of `make_pipeline`: LightGBM, or a blend of LightGBM seeds and a logistic regression.
On a cluster each LightGBM member is trained by every worker at once, each on its own block of rows
(LightGBM's data-parallel tree learner: the workers add their histograms over the network), and comes back as
an ordinary `LGBMClassifier`, so the bundle, the API and the explanations use it as they use a local fit.
What is not LightGBM (the logistic regression, a sampler, the scorecard, the forest) is fitted here.

Data-parallel LightGBM bins each worker's rows and sums their histograms, so its trees are not the bytes of a
single-process fit; they are the same model trained on the same rows, with the same settings and tree count.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import clone

from creditscore.compute import Runner
from creditscore.modelling.models import LogitBlend


def _fit_lightgbm(model, x: np.ndarray, y: np.ndarray, compute: Runner):
    """`model` (an unfitted LGBMClassifier) trained on the cluster; returns the local LGBMClassifier."""
    import dask.array as da
    from lightgbm import DaskLGBMClassifier

    client = compute.client()
    workers = sorted(client.nthreads())
    bounds = np.linspace(0, len(y), len(workers) + 1).astype(int)
    # lightgbm.dask gives each worker's LightGBM as many threads as the worker has
    settings = {k: v for k, v in model.get_params().items() if k != "n_jobs"}
    with client.as_current():  # the runner's client is not the process's default one
        # one block of rows kept on each worker (left to itself, Dask may put every block on one worker, which
        # then trains alone)
        blocks = [client.persist([da.from_array(x[a:b], chunks=-1), da.from_array(y[a:b], chunks=-1)],
                                 workers=[worker]) for worker, a, b in zip(workers, bounds[:-1], bounds[1:])]
        distributed = DaskLGBMClassifier(client=client, **settings)
        distributed.fit(da.concatenate([xb for xb, _ in blocks]), da.concatenate([yb for _, yb in blocks]))
        return distributed.to_local()


def fit(pipeline, x: np.ndarray, y: np.ndarray, compute: Runner | None = None):
    """`clone(pipeline).fit(x, y)`, with its LightGBM members trained on the cluster when there is one."""
    fitted = clone(pipeline)
    if compute is None or compute.local:
        return fitted.fit(x, y)
    model = fitted.steps[-1][1]
    if isinstance(model, LogitBlend):  # its own fit, with each LightGBM seed on the cluster
        model.fit(x, y, fit_lightgbm=lambda member, rows, labels: fit(member, rows, labels, compute))
        return fitted
    if type(model).__name__ != "LGBMClassifier":
        return fitted.fit(x, y)
    rows_x, rows_y = x, y
    for _, step in fitted.steps[:-1]:  # a sampler (undersampling) acts here, as in the pipeline's own fit
        rows_x, rows_y = step.fit_resample(rows_x, rows_y) if hasattr(step, "fit_resample") else (
            step.fit_transform(rows_x, rows_y), rows_y)
    fitted.steps[-1] = (fitted.steps[-1][0], _fit_lightgbm(model, rows_x, rows_y, compute))
    return fitted
