"""The outside references a user compares the pipeline with: a kernel-style LightGBM and a logistic regression.

The features are those of the public Kaggle kernels ("LightGBM with simple features", application
part), as computed by `creditscore.synthetic.realism.kernel_features`: every raw application column,
one-hot categories, DAYS_EMPLOYED 365243 as missing, and five ratios; none of the pipeline's feature
code. The one-hot levels are those of the labelled and the scored rows together, as in the kernel.
The LightGBM settings are the kernel's, with 400 trees at learning rate 0.02.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from creditscore.modelling.leaves import leaf_floor
from creditscore.synthetic.realism import kernel_features

KERNEL_LIGHTGBM = {"n_estimators": 400, "learning_rate": 0.02, "num_leaves": 34, "colsample_bytree": 0.9497036,
                   "subsample": 0.8715623, "max_depth": 8, "reg_alpha": 0.041545473, "reg_lambda": 0.0735294,
                   "min_split_gain": 0.0222415, "min_child_weight": 39.3259775}


def kernel_matrices(fit: pl.DataFrame, score: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Kernel-style features of the labelled rows and of the rows to score."""
    both = pl.concat([fit.drop("TARGET"), score.drop("TARGET", strict=False)], how="diagonal_relaxed")
    x, _ = kernel_features(both)
    return x[: fit.height], x[fit.height:]


def kernel_lightgbm(x: np.ndarray, y: np.ndarray, seed: int, floored: bool = False):
    """The kernel's LightGBM fitted on (x, y). `floored`: with the pipeline's leaf floor
    (`creditscore.modelling.leaves`), the reference that can still split on a few hundred clients."""
    import lightgbm as lgb
    params = leaf_floor(KERNEL_LIGHTGBM, y, 1.0) if floored else KERNEL_LIGHTGBM
    return lgb.LGBMClassifier(random_state=seed, n_jobs=2, verbose=-1, **params).fit(x, y)


def logistic_regression(x: np.ndarray, y: np.ndarray):
    """Standardised logistic regression on median-imputed kernel features."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         LogisticRegression(C=0.1, max_iter=3000)).fit(x, y)
