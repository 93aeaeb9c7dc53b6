"""The prediction API blueprint: health, model facts, scoring, known clients, what-if and the dashboard's reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flask import Blueprint, current_app, jsonify, request

from app.http import BadBody, error, json_body
from app.openapi import openapi_document
from app.service import ServingModel
from app.validation import MAX_BATCH, WHAT_IF_FIELDS, PredictRequest, WhatIfRequest, as_raw_rows
from creditscore.explanation import groups
from creditscore.serving.artifacts import NO_CLIENTS
from creditscore.serving.bundle import QUANTILES

api = Blueprint("api", __name__)


@dataclass
class Served:
    """What the app serves: the model, loaded once, and the inference log (None when off)."""
    model: ServingModel
    log: object | None

    def record(self, ids: list, x: np.ndarray, decisions: list[dict], kind: str = "application") -> None:
        """Log the scored rows (a log outage drops and counts them: it never fails the request)."""
        if self.log is None:
            return
        self.log.append([{"kind": kind, "sk_id_curr": None if i is None else int(i),
                          "model_version": self.model.version, "score": d["probability"], "decision": d["decision"],
                          "features": {n: (None if np.isnan(v) else float(v))
                                       for n, v in zip(self.model.features, row)}}
                         for i, row, d in zip(ids, x, decisions)])

    def log_status(self) -> tuple[dict, list[str]]:
        if self.log is None:
            return {"backend": "off"}, []
        status, warnings = self.log.status(), []
        if not status["durable"]:
            warnings.append(f"inference log: {status['location']} is a file on an ephemeral disk (DYNO or RENDER is "
                            "set): its rows are lost at every restart; set DATABASE_URL to a PostgreSQL database")
        if status["rows_dropped"]:
            warnings.append(f"inference log: {status['rows_dropped']} row(s) dropped since start because "
                            f"{status['location']} was unavailable (scoring went on)")
        return status, warnings


def served() -> Served:
    return current_app.extensions["credit_api"]


@api.get("/health")
def health():
    model = served().model
    status, warnings = served().log_status()
    body = {"status": "ok", "model_loaded": True, "model_version": model.version, "inference_log": status}
    changes = model.disk_changes()
    # still serving the verified snapshot; a restart of the service would not start
    warnings = [f"{c}: serving the copy verified at start; fix the file or run `dvc pull` before restarting "
                f"the service" for c in changes] + warnings
    if warnings:
        body["warnings"] = warnings
    return jsonify(body)


@api.get("/model")
def model_info():
    model = served().model
    return jsonify({**model.info(), "inference_log": served().log_status()[0]})


@api.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@api.post("/predict")
def predict():
    model = served().model
    body = PredictRequest.model_validate(json_body())
    rows = as_raw_rows(body.rows(), "application_test")
    history = None
    if body.history is not None:
        history = {t: as_raw_rows(getattr(body.history, t) or [], t) for t in type(body.history).model_fields}
    placeholder = [r.setdefault("SK_ID_CURR", -(i + 1)) < 0 for i, r in enumerate(rows)]
    x = model.raw_matrix(rows, history)[:, model.model_index]
    decisions = model.decide(x)
    ids = [None if p else r["SK_ID_CURR"] for r, p in zip(rows, placeholder)]
    raws = model.raw_fields(rows) if body.explain else []
    for i, d in enumerate(decisions):
        d["SK_ID_CURR"] = ids[i]
        if body.explain:
            d["explanation"] = model.explain(x[i], raws[i], d["decision"] == "refused")
    served().record(ids, x, decisions)
    if body.application is not None:
        return jsonify(decisions[0])
    return jsonify({"model_version": model.version, "count": len(decisions), "predictions": decisions})


def _known(client: int) -> int:
    model = served().model
    row = model.known(client)
    if row is None and not model.has_clients:
        raise BadBody(404, NO_CLIENTS)
    if row is None:
        raise BadBody(404, f"client {client} is not among the application_test clients of the last pipeline run")
    return row


@api.get("/clients")
def clients():
    model = served().model
    try:
        limit = int(request.args.get("limit", 50))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        return error(400, "limit and offset must be whole numbers")
    if not (1 <= limit <= MAX_BATCH and offset >= 0):
        return error(400, f"limit must be 1..{MAX_BATCH} and offset >= 0")
    ids = model.client_ids[offset:offset + limit]
    decisions = model.decide(model.client_x(offset, offset + limit)) if len(ids) else []
    return jsonify({"total": len(model.client_ids), "offset": offset,
                    "clients": [{"SK_ID_CURR": int(i), "probability": d["probability"], "decision": d["decision"]}
                                for i, d in zip(ids, decisions)]})


@api.get("/clients/<client_id:client>")
def client(client: int):
    model = served().model
    row = _known(client)
    x = model.client_x(row, row + 1)
    decision = model.decide(x)[0]
    served().record([client], x, [decision], kind="view")
    return jsonify({"SK_ID_CURR": client, **decision, "client": model.client_fields(row),
                    "key_values": model.key_values(row)})


@api.get("/clients/<client_id:client>/explain")
def client_explain(client: int):
    model = served().model
    row = _known(client)
    x = model.client_x(row, row + 1)[0]
    decision = model.decide(x[None, :])[0]
    return jsonify({"SK_ID_CURR": client, **decision, "key_values": model.key_values(row),
                    "explanation": model.explain(x, model.client_raw(row),
                                                 decision["decision"] == "refused")})


@api.post("/clients/<client_id:client>/whatif")
def client_what_if(client: int):
    model = served().model
    row = _known(client)
    changes = WhatIfRequest.model_validate(json_body()).model_dump(exclude_none=True)
    x, keys, raw = model.what_if(row, changes)
    decision = model.decide(x[None, :])[0]
    return jsonify({"SK_ID_CURR": client, "changes": changes, **decision,
                    "explanation": model.explain(x, raw, decision["decision"] == "refused"), "key_values": keys})


@api.get("/reference")
def reference():
    """What the dashboard draws clients against: key fields' quantiles among granted and refused clients, what
    drives the model by field, the threshold in cost terms, and the filters and features of the comparison."""
    model = served().model
    population = model.reference.population
    metrics = model.bundle.metrics
    return jsonify({"key_fields": model.key_fields,
                    "labels": {k: model.labels.get(k, k) for k in model.key_fields},
                    "quantiles": QUANTILES,
                    "distributions": model.reference.distributions, "threshold": model.threshold,
                    "drivers": model.reference.drivers[:15],
                    "cost": {**model.bundle.cost, **{k: metrics.get(k) for k in (
                        "holdout_cost_per_client", "holdout_cost_vs_accept_all", "holdout_cost_vs_refuse_all",
                        "approval_rate", "holdout_recall", "holdout_precision")}},
                    "filters": {name: {"label": groups.FILTER_LABELS[name], "levels": levels}
                                for name, levels in groups.options(population).items()},
                    "features": [{"name": n, "label": model.labels.get(n, n)} for n in population["names"]],
                    "grid_features": population["grid_names"],
                    "what_if_fields": [f for f in WHAT_IF_FIELDS if any(f in fs for fs in model.sources.values())]})


@api.get("/clients/<client_id:client>/compare")
def client_compare(client: int):
    """The client against a group of similar training clients and everyone, in aggregates only."""
    model = served().model
    row = _known(client)
    args = request.args
    feature = args.get("feature")
    if not feature:
        raise BadBody(400, "feature is required: a name from GET /reference features",
                      [{"field": "feature", "problem": "missing"}])
    unknown = sorted(set(args) - {"feature", "versus", *groups.FILTERS})
    if unknown:
        raise BadBody(400, f"unknown parameter {unknown[0]}; filters are {', '.join(groups.FILTERS)}",
                      [{"field": unknown[0], "problem": "unknown parameter"}])
    values = {**dict(zip(model.features, model.client_x(row, row + 1)[0].tolist())),
              **{k: (np.nan if v is None else v) for k, v in model.key_values(row).items()}}
    filters = {k: args[k] for k in groups.FILTERS if args.get(k)}
    population = model.reference.population
    try:
        answer = groups.compare(population, filters, feature, args.get("versus") or None, values)
    except KeyError as missing:
        name = missing.args[0]
        field = "versus" if name == args.get("versus") else "feature"
        if name in population["names"]:  # a known feature, outside the grid's pairs
            raise BadBody(400, f"{field}: a grid is kept for two of the key fields ({', '.join(population['grid_names'])}),"
                               f" and {name!r} is not one; see GET /reference grid_features",
                          [{"field": field, "problem": "no grid for this feature"}]) from None
        raise BadBody(400, f"{field}: unknown feature {name!r}; see GET /reference features",
                      [{"field": field, "problem": "unknown feature"}]) from None
    except groups.GroupTooSmall as small:
        raise BadBody(422, str(small), [{"field": "filters", "problem": "group too small"}]) from None
    answer["feature"]["label"] = model.labels.get(feature, feature)
    if "versus" in answer:
        answer["versus"]["label"] = model.labels.get(answer["versus"]["name"], answer["versus"]["name"])
    return jsonify({"SK_ID_CURR": client, **answer})
