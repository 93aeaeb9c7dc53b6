"""Cross-validation helpers shared by the stages and the benchmarks."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold


def lightgbm_oof(x: np.ndarray, y: np.ndarray, folds: int, seed: int, params: dict) -> np.ndarray:
    """Out-of-fold probabilities of a LightGBM classifier over stratified folds."""
    oof = np.zeros(len(y))
    for fit, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = lgb.LGBMClassifier(random_state=seed, verbose=-1, **params).fit(x[fit], y[fit])
        oof[val] = model.predict_proba(x[val])[:, 1]
    return oof


def cv_auc(x: np.ndarray, y: np.ndarray, folds: int, seed: int, params: dict) -> float:
    """AUC of the out-of-fold probabilities."""
    return float(roc_auc_score(y, lightgbm_oof(x, y, folds, seed, params)))
