"""The points scorecard challenger: optbinning's WoE binning and scorecard, as one scikit-learn estimator.

`PointsScorecard` bins every feature with optbinning's `BinningProcess` (optimal bins of at least
`min_bin_size` of the clients, a missing-value bin, the monotonic trend of `trends` or one found from the
data), keeps the `max_features` of highest information value (at least `min_iv`), skipping one whose weights
of evidence correlate above `max_correlation` with a feature already kept (as a scorecard team would), fits a logistic
regression on their weights of evidence, and scales it to points by optbinning's `Scorecard` (PDO scaling:
`base_points` at good:bad odds of `base_odds`, `pdo` more points for twice the odds, as
`creditscore.decision.points`). It takes the same
NumPy rows as every other candidate, so it sits in the same pipeline, folds and cost as they do.

What a credit team reads from it: `table()` (feature, bin, clients, default rate, WoE, IV, points),
`information_values()` (every feature ranked), `points(x)` (each client's points per feature; they add up
to `score(x)`), and `parts(x)`: each feature's share of the log-odds, which add up to the log-odds exactly
and are the contributions the explain stage and the API show.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from creditscore.errors import DataError
from creditscore.params import TRENDS

if TYPE_CHECKING:  # pandas is imported where a card is fitted or read: the API's environment has none
    import pandas as pd


class PointsScorecard(ClassifierMixin, BaseEstimator):
    """WoE binning, IV selection, logistic regression and PDO points (see the module docstring)."""

    def __init__(self, feature_names: list[str] | None = None, max_features: int = 20, min_iv: float = 0.02,
                 max_correlation: float = 0.8,
                 max_n_prebins: int = 20, min_bin_size: float = 0.05, C: float = 1.0,
                 trends: dict[str, str] | None = None, base_points: float = 600.0, base_odds: float = 50.0,
                 pdo: float = 20.0, random_state: int = 0, excluded: list[str] | tuple = ()):
        self.feature_names = feature_names
        self.excluded = excluded
        self.max_features = max_features
        self.min_iv = min_iv
        self.max_correlation = max_correlation
        self.max_n_prebins = max_n_prebins
        self.min_bin_size = min_bin_size
        self.C = C
        self.trends = trends
        self.base_points = base_points
        self.base_odds = base_odds
        self.pdo = pdo
        self.random_state = random_state

    def _names(self, n: int) -> list[str]:
        names = list(self.feature_names) if self.feature_names is not None else [f"x{i}" for i in range(n)]
        if len(names) != n:
            raise ValueError(f"scorecard: {len(names)} feature names for {n} columns")
        return names

    def _frame(self, x) -> pd.DataFrame:
        import pandas as pd

        x = np.asarray(x, dtype=np.float64)
        return pd.DataFrame(x, columns=self.names_)

    def fit(self, x, y):
        from optbinning import BinningProcess, Scorecard  # imported when fitted: ~1 s, never in the web app

        trends = dict(self.trends or {})
        default = trends.pop("default", "auto_asc_desc")
        bad = {k: v for k, v in {"default": default, **trends}.items() if v not in TRENDS}
        if bad:
            raise ValueError(f"scorecard: unknown monotonic trend(s) {bad}; expected one of {TRENDS}")
        self.names_ = self._names(np.shape(x)[1])
        frame, y = self._frame(x), np.asarray(y)
        settings = {"max_n_prebins": int(self.max_n_prebins), "min_bin_size": float(self.min_bin_size)}
        # a column with fewer than two values among the clients (all missing: a history table absent) cannot be
        # binned (optbinning's pre-binning tree gets no row) and carries no information: its IV is 0
        values = np.asarray(x, dtype=np.float64)
        # `excluded`: features a credit committee cannot check by hand (products, polynomial terms, encodings)
        usable = [n for i, n in enumerate(self.names_) if n not in set(self.excluded)
                  and len(np.unique(values[~np.isnan(values[:, i]), i])) >= 2]
        self.iv_ = {n: 0.0 for n in self.names_}
        if not usable:
            raise DataError(f"scorecard: no feature has an information value of at least {self.min_iv}")
        with warnings.catch_warnings():  # a constant column bins into one bin: optbinning says so, it is harmless
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            screen = BinningProcess(usable, **settings, binning_fit_params={
                n: {"monotonic_trend": trends.get(n, default)} for n in usable}).fit(frame[usable], y)
            summary = screen.summary()
            self.iv_.update(zip(summary["name"].astype(str), summary["iv"].astype(float)))
            self.selected_ = self._choose(screen.transform(frame[usable], metric="woe", metric_missing="empirical",
                                                           metric_special="empirical"))
            process = BinningProcess(self.selected_, **settings, binning_fit_params={
                n: {"monotonic_trend": trends.get(n, default)} for n in self.selected_})
            self.scorecard_ = Scorecard(process, LogisticRegression(C=float(self.C), max_iter=2000),
                                        scaling_method="pdo_odds",
                                        scaling_method_params={"pdo": float(self.pdo), "odds": float(self.base_odds),
                                                               "scorecard_points": float(self.base_points)})
            self.scorecard_.fit(frame[self.selected_], y, metric_missing="empirical", metric_special="empirical")
        self.index_ = [self.names_.index(n) for n in self.selected_]
        estimator = self.scorecard_.estimator_
        self.coef_ = np.asarray(estimator.coef_[0], dtype=np.float64)
        self.intercept_ = float(estimator.intercept_[0])
        woe = self._woe(x)
        self.mean_woe_ = woe.mean(axis=0)  # centres the contributions on the training clients (linear SHAP)
        self.classes_ = np.array([0, 1])
        return self

    def _choose(self, woe: pd.DataFrame) -> list[str]:
        """Features by information value, highest first (ties by name), skipping one whose weights of evidence
        correlate above `max_correlation` with a feature already chosen, up to `max_features`."""
        order = sorted((n for n in woe.columns if self.iv_[n] >= float(self.min_iv) and self.iv_[n] > 0),
                       key=lambda n: (-self.iv_[n], n))
        chosen: list[str] = []
        for name in order:
            column = woe[name].to_numpy(dtype=np.float64)
            if column.std() == 0:
                continue
            if all(abs(np.corrcoef(column, woe[c].to_numpy(dtype=np.float64))[0, 1]) <= float(self.max_correlation)
                   for c in chosen):
                chosen.append(name)
            if len(chosen) == int(self.max_features):
                break
        if not chosen:
            raise DataError(f"scorecard: no feature has an information value of at least {self.min_iv}")
        return chosen

    def _woe(self, x) -> np.ndarray:
        """Weight of evidence of each selected feature's bin (the missing bin's own; an unseen bin: 0)."""
        frame = self._frame(x)[self.selected_]
        woe = self.scorecard_.binning_process_.transform(frame, metric="woe", metric_missing="empirical",
                                                         metric_special="empirical")
        return woe[self.selected_].to_numpy(dtype=np.float64)

    def parts(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Each input feature's part of the log-odds of default (0 for features not in the card), and the base:
        parts + base = log-odds exactly, and each part is 0 on average over the training clients."""
        woe = self._woe(x)
        values = np.zeros((len(woe), len(self.names_)))
        values[:, self.index_] = (woe - self.mean_woe_) * self.coef_
        base = self.intercept_ + float(self.mean_woe_ @ self.coef_)
        return values, np.full(len(woe), base)

    def decision_function(self, x) -> np.ndarray:
        return self._woe(x) @ self.coef_ + self.intercept_

    def predict_proba(self, x) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1 - p, p])

    def predict(self, x) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)

    def points(self, x) -> pd.DataFrame:
        """Each client's points per feature of the card; their row sum is `score(x)`."""
        return self.scorecard_.transform(self._frame(x)[self.selected_])[self.selected_]

    def score(self, x) -> np.ndarray:  # noqa: D102 (the total points, not scikit-learn's accuracy)
        return self.scorecard_.score(self._frame(x)[self.selected_])

    def table(self) -> pd.DataFrame:
        """Feature, bin, clients, defaults, default rate, WoE, IV and points: the card a credit team reads.
        Empty bins (no special codes, no missing value seen) are left out."""
        import pandas as pd

        t = self.scorecard_.table(style="detailed")
        t = t[t["Count"] > 0]
        out = pd.DataFrame({"feature": t["Variable"].astype(str).to_numpy(), "bin": t["Bin"].astype(str).to_numpy(),
                            "clients": t["Count"].astype(int).to_numpy(),
                            "defaults": t["Event"].astype(int).to_numpy(),
                            "default_rate": t["Event rate"].astype(float).round(6).to_numpy(),
                            "woe": t["WoE"].astype(float).round(6).to_numpy(),
                            "iv": t["IV"].astype(float).round(6).to_numpy(),
                            "points": t["Points"].astype(float).round(3).to_numpy()})
        return out.reset_index(drop=True)

    def information_values(self) -> pd.DataFrame:
        """Every feature's information value, highest first, and whether it made the card."""
        import pandas as pd

        out = pd.DataFrame({"feature": list(self.iv_), "iv": np.round(list(self.iv_.values()), 6),
                            "selected": [n in self.selected_ for n in self.iv_]})
        return out.sort_values(["iv", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)
