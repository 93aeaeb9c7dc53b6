"""The served model: the pipeline's bundle and the explain stage's reference, checked, loaded once, scored fast."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.decision.calibration import calibrate
from creditscore.decision.points import points_of
from creditscore.errors import ArtifactError
from creditscore.explanation.contributions import contributions
from creditscore.explanation.reasons import field_chart, reasons, sources_of
from creditscore.features.serving import client_matrix, model_values, serving_plan, typed_frame
from creditscore.serving.artifacts import ENV, SourceWatch
from creditscore.serving.blocks import block_row
from creditscore.serving.bundle import CLIENT_FIELDS, Bundle, KnownClients, Reference, verified_load
from creditscore.serving.scoring import Scorer

ModelNotReady = ArtifactError  # the name the app and its tests use


def threshold_score(calibration: dict, threshold: float) -> float | None:
    """The model's own score (log-odds) from which the calibrated probability reaches the threshold: where the
    dashboard's explanation chart marks it. None when no score reaches it."""
    z = np.linspace(-12.0, 12.0, 4801)
    reached = np.flatnonzero(calibrate(1.0 / (1.0 + np.exp(-z)), calibration) >= threshold)
    return round(float(z[reached[0]]), 3) if len(reached) else None


class ServingModel:
    def __init__(self, bundle_path: Path, reference_path: Path, clients_path: Path | None = None):
        bundle, digest = verified_load(bundle_path, Bundle)
        reference, _ = verified_load(reference_path, Reference)
        clients = verified_load(clients_path, KnownClients)[0] if clients_path is not None else None
        self.version = digest[:12]
        self.bundle_path = bundle_path
        # the originals the gunicorn master verified and snapshotted (creditscore.serving.artifacts), watched for /health
        self.watches = [SourceWatch(Path(os.environ[f"{var}_SOURCE"]), os.environ[f"{var}_DIGEST"])
                        for var in ENV.values() if os.environ.get(f"{var}_SOURCE") and os.environ.get(f"{var}_DIGEST")]
        self.pipeline = bundle.pipeline
        self.features: list[str] = bundle.features
        self.threshold = float(bundle.threshold)
        self.calibration = bundle.calibration
        self.spec = bundle.spec
        self.bundle = bundle
        self.scorer = Scorer(self.pipeline)
        if self.scorer.kind == "random_forest":  # its contributions need the shap library, not in the serving set
            try:
                import shap  # noqa: F401
            except ImportError as exc:
                raise ModelNotReady("the pipeline chose a random forest, whose explanations need the `shap` "
                                    "package: install it beside requirements-serving.txt (about 200 MB) or "
                                    "remove random_forest from params.yaml train.models and run `dvc repro`") from exc
        if self.scorecard_needs_optbinning():
            raise ModelNotReady("the pipeline chose the points scorecard, which needs the `optbinning` package: install "
                                "it beside requirements-serving.txt or remove scorecard from params.yaml train.models "
                                "and run `dvc repro`")
        self.reference = reference
        self.labels: dict[str, str] = reference.labels
        self.typical = np.asarray(reference.typical, dtype=np.float64)
        self.typical_fields: dict = reference.typical_fields
        self.sources = sources_of(self.spec, bundle.manifest, self.features)
        self.threshold_score = threshold_score(self.calibration, self.threshold)
        self.key_fields: list[str] = reference.key_fields
        names = list(dict.fromkeys([*self.features, *self.key_fields]))
        self.plan = serving_plan(self.spec, names)
        self.app_plan: list[str] = self.plan["app_names"]
        self.model_index = [names.index(n) for n in self.features]  # plan columns -> model features
        # the known clients, when this deployment serves them (models/clients.joblib; docs/security.md)
        self.has_clients = clients is not None
        self.client_ids = clients.ids if clients is not None else np.zeros(0, dtype=np.int64)
        # a sorted index rather than a dict of Python ints: a few hundred kB per worker instead of several MB
        self._client_order = np.argsort(self.client_ids, kind="stable")
        self._client_sorted = self.client_ids[self._client_order]
        # float32, as the feature files hold them (the models were fitted on float32 matrices): half the memory of
        # float64 per worker, and exact, since every value is a float32. `client_x` gives the float64 rows scored.
        self._client_features = (np.ascontiguousarray(clients.features, dtype=np.float32) if clients is not None
                                 else np.zeros((0, len(self.features)), dtype=np.float32))
        self.client_keys = (np.asarray(clients.key_values, dtype=np.float64) if clients is not None
                            else np.zeros((0, len(self.key_fields))))
        # the prepared application rows (the fields the API reads), in blocks of Arrow bytes shared with the master:
        # a request reads the block of its client (a fraction of a millisecond), so no worker holds them all
        self._client_blocks: list = clients.application if clients is not None else []
        self.feature_index = {n: i for i, n in enumerate(self.features)}

    def scorecard_needs_optbinning(self) -> bool:
        if self.scorer.kind != "scorecard":
            return False
        try:
            import optbinning  # noqa: F401
        except ImportError:
            return True
        return False

    # --- facts -----------------------------------------------------------------------------------------------
    def disk_changes(self) -> list[str]:
        """What changed on disk since the served files were verified (empty when nothing did)."""
        return [c for c in (w.changed() for w in self.watches) if c]

    def info(self) -> dict:
        metrics = self.bundle.metrics
        written = dt.datetime.fromtimestamp(self.bundle_path.stat().st_mtime, dt.UTC)
        return {"model_version": self.version, "model": self.bundle.model,
                "trained_at": written.isoformat(timespec="seconds"),
                "trained_at_source": "modification time of models/bundle.joblib (the bundle itself carries no "
                                     "timestamp, so that dvc repro stays byte-reproducible)",
                "threshold": self.threshold, "cost": self.bundle.cost, "calibration": self.calibration["method"],
                "n_features": len(self.features), "features": self.features,
                "metrics": {k: metrics[k] for k in ("holdout_cost_per_client", "holdout_cost_vs_accept_all",
                                                    "approval_rate", "holdout_recall", "holdout_precision",
                                                    "holdout_brier_calibrated") if k in metrics},
                "versions": self.bundle.versions, "known_clients": len(self.client_ids)}

    # --- scoring ---------------------------------------------------------------------------------------------
    def decide(self, x: np.ndarray) -> list[dict]:
        proba = calibrate(self.scorer.proba(x), self.calibration)
        points = points_of(proba, **self.bundle.points)
        return [{"probability": round(float(p), 6), "points": round(float(s), 1),
                 "decision": "refused" if p >= self.threshold else "granted",
                 "distance_to_threshold": round(float(p - self.threshold), 6),
                 "threshold": self.threshold, "model_version": self.version} for p, s in zip(proba, points)]

    def explain(self, x_row: np.ndarray, raw: dict, refused: bool) -> dict:
        """Contributions of every feature, and the reasons (refused) or strengths (granted) by source field;
        `raw` is the client's cleaned application fields."""
        c = contributions(self.pipeline, x_row[None, :])
        order = np.argsort(-np.abs(c.values[0]), kind="stable")
        return {"space": c.space, "base_value": round(float(c.base[0]), 6),
                "contributions": [{"feature": self.features[i], "label": self.labels.get(self.features[i]),
                                   "value": None if np.isnan(x_row[i]) else float(x_row[i]),
                                   "contribution": round(float(c.values[0, i]), 6)} for i in order],
                "reasons": reasons(c.values[0], self.features, self.sources, raw, x_row, refused, self.typical_fields,
                                   self.labels),
                "fields": field_chart(c.values[0], self.features, self.sources),
                "threshold_score": self.threshold_score if c.space == "log-odds" else None}

    def raw_fields(self, applications: list[dict]) -> list[dict]:
        """Raw application rows typed and cleaned as `prepare` does: the fields the reasons speak of."""
        return typed_frame("application_test", applications).to_dicts()

    def raw_matrix(self, applications: list[dict], history: dict | None) -> np.ndarray:
        """The plan's features (model features, then key fields) of raw application rows and history."""
        return client_matrix(applications, history, self.plan)

    # --- known clients ---------------------------------------------------------------------------------------
    def known(self, client: int) -> int | None:
        """The known client's row, or None."""
        if not -2**63 <= client < 2**63:  # no SK_ID_CURR is outside int64
            return None
        at = int(np.searchsorted(self._client_sorted, client))
        if at < len(self._client_sorted) and self._client_sorted[at] == client:
            return int(self._client_order[at])
        return None

    def client_x(self, start: int, stop: int) -> np.ndarray:
        """Known clients' feature rows `start` to `stop` (excluded), as the float64 matrix the models score."""
        return self._client_features[start:stop].astype(np.float64)

    def key_values(self, row: int) -> dict:
        values = self.client_keys[row]
        return {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v))
                for k, v in zip(self.key_fields, values)}

    def client_application(self, row: int) -> pl.DataFrame:
        """The known client's prepared application fields, one row."""
        return block_row(self._client_blocks, row)

    def client_raw(self, row: int) -> dict:
        """The known client's cleaned application fields, as the reasons read them."""
        return self.client_application(row).row(0, named=True)

    def client_fields(self, row: int) -> dict:
        app = self.client_raw(row)
        return {k: app.get(k) for k in CLIENT_FIELDS}

    def what_if(self, row: int, changes: dict) -> tuple[np.ndarray, dict, dict]:
        """The client's feature row after changing application amounts; history aggregates are kept.

        The changed (prepared, already cleaned) application row goes through the serving plan's
        application expressions, the engineer stage's own, so every ratio using the amounts is recomputed.
        """
        app = self.client_application(row).with_columns([pl.lit(v, dtype=pl.Float64).alias(k)
                                                         for k, v in changes.items()])
        computed = model_values(app.select(self.plan["app_exprs"])).astype(np.float64)[0]
        values = dict(zip(self.app_plan, computed))
        x = self.client_x(row, row + 1)[0]
        for name, value in values.items():
            if name in self.feature_index:
                x[self.feature_index[name]] = value
        keys = self.key_values(row)
        keys.update({k: (None if np.isnan(values[k]) else float(values[k])) for k in self.key_fields if k in values})
        return x, keys, app.row(0, named=True)
