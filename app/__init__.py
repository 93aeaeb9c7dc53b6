"""Prediction API and relationship-manager dashboard (Flask app factory; `gunicorn "app:create_app()"`).

Configuration (environment variables):
  MODEL_BUNDLE     path of the pipeline's bundle (default models/bundle.joblib)
  MODEL_REFERENCE  path of the explain stage's serving reference (default models/reference.joblib)
  API_KEY          when set, every endpoint but /health requires it: the X-API-Key header, or the
                   dashboard's session cookie (`/?api_key=...` once: it sets the cookie and redirects to
                   `/`, so the key leaves the address bar); set but empty refuses to start
  INFERENCE_LOG    where every scored request is logged for the drift stage: a postgresql:// URL, a
                   SQLite file, or "off"; unset: DATABASE_URL (Heroku's and Render's convention) when
                   set, else the file logs/inference.sqlite. INFERENCE_LOG_MAX_ROWS (100000) and
                   INFERENCE_LOG_MAX_DAYS (90) bound it; INFERENCE_LOG_KEY keys the client pseudonym
                   (no key: no client reference is stored). See creditscore/monitoring/inference_log/.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import sys
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, redirect, render_template, request
from pydantic import ValidationError
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from app.openapi import openapi_document
from app.service import ModelNotReady, ServingModel
from app.validation import MAX_BATCH, PredictRequest, WhatIfRequest, as_raw_rows, error_details
from creditscore.config import ROOT
from creditscore.data.raw import DataError
from creditscore.monitoring.inference_log import PostgresLog, from_environment

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 10  # nesting of a JSON body: {"history": {"bureau": [{...}]}} is 4 deep
TOO_DEEP = f"JSON body nested too deeply (at most {MAX_DEPTH} levels)"
COOKIE = "credit_api_key"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


class ClientId(BaseConverter):
    """A client id in a URL: ASCII digits only (int() would also read other scripts' digits), at most 16."""
    regex = "[0-9]{1,16}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def _api_key() -> str | None:
    """API_KEY from the environment: None when unset; set but blank is a mistake, not "no authentication"."""
    key = os.environ.get("API_KEY")
    if key is not None and not key.strip():
        raise ValueError("API_KEY is set but empty: set a key, or unset API_KEY to serve without authentication")
    return key


def session_token(api_key: str) -> str:
    """The dashboard's cookie value: derived from the key, so the cookie never holds the key itself."""
    return hmac.new(api_key.encode(), b"credit-dashboard-session", hashlib.sha256).hexdigest()


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple]) -> dict:
    """json.loads hook: an object that names a key twice is refused (the last one would silently win)."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _depth(value) -> int:
    """How deeply a parsed JSON value nests objects and arrays (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _error(status: int, message: str, details: list[dict] | None = None):
    body = {"error": message}
    if details:
        body["details"] = details
    return jsonify(body), status


def _json_body() -> dict:
    """The request's JSON object, or a 4xx that says what is wrong with the body."""
    if not request.is_json:
        raise _BadBody(415, "the body must be JSON (Content-Type: application/json)")
    try:
        raw = request.get_data(cache=True)
    except (OSError, ClientDisconnected):  # the client stopped sending its body (gunicorn.conf.py READ_TIMEOUT_S)
        raise _BadBody(408, "the request body did not arrive in time") from None
    try:
        data = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise _BadBody(400, f"duplicate key {exc.key!r} in the JSON body",
                       [{"field": exc.key, "problem": "duplicate key"}]) from None
    except RecursionError:
        raise _BadBody(400, TOO_DEEP) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise _BadBody(400, "malformed JSON body") from None
    if _depth(data) > MAX_DEPTH:
        raise _BadBody(400, TOO_DEEP)
    if not isinstance(data, dict):
        raise _BadBody(400, "the JSON body must be an object")
    return data


class _BadBody(Exception):
    def __init__(self, status: int, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def create_app(bundle: str | os.PathLike | None = None, reference: str | os.PathLike | None = None) -> Flask:
    """Load and verify the model once; refuse to start (ModelNotReady, with what to run) if it is absent or corrupt."""
    bundle_path = Path(bundle or os.environ.get("MODEL_BUNDLE") or ROOT / "models" / "bundle.joblib")
    reference_path = Path(reference or os.environ.get("MODEL_REFERENCE") or ROOT / "models" / "reference.joblib")
    try:
        api_key = _api_key()
        model = ServingModel(bundle_path, reference_path)
    except (ModelNotReady, ValueError) as exc:
        print(f"credit-scoring API: cannot start: {exc}", file=sys.stderr, flush=True)
        raise
    app = Flask(__name__)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)  # Render and Heroku end TLS at their router
    app.url_map.converters["client_id"] = ClientId
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    log = from_environment(ROOT / "logs" / "inference.sqlite")
    if isinstance(log, PostgresLog):
        log.ensure_schema()  # created or migrated now; an unreachable database is retried by later appends
    app.extensions["model"] = model
    app.extensions["inference_log"] = log

    def record(ids: list, x: np.ndarray, decisions: list[dict], kind: str = "application") -> None:
        """Log the scored rows (a log outage drops and counts them: it never fails the request)."""
        if log is None:
            return
        log.append([{"kind": kind, "sk_id_curr": None if i is None else int(i), "model_version": model.version,
                     "score": d["probability"], "decision": d["decision"],
                     "features": {n: (None if np.isnan(v) else float(v)) for n, v in zip(model.features, row)}}
                    for i, row, d in zip(ids, x, decisions)])

    def log_status() -> tuple[dict, list[str]]:
        if log is None:
            return {"backend": "off"}, []
        status, warnings = log.status(), []
        if not status["durable"]:
            warnings.append(f"inference log: {status['location']} is a file on an ephemeral disk (DYNO or RENDER is "
                            "set): its rows are lost at every restart; set DATABASE_URL to a PostgreSQL database")
        if status["rows_dropped"]:
            warnings.append(f"inference log: {status['rows_dropped']} row(s) dropped since start because "
                            f"{status['location']} was unavailable (scoring went on)")
        return status, warnings

    @app.before_request
    def _check_key():
        if api_key is None or request.endpoint == "health":
            return None
        if request.endpoint == "dashboard" and "api_key" in request.args:  # the one place a key may be typed
            if not hmac.compare_digest(request.args["api_key"].encode(), api_key.encode()):
                return _error(401, "wrong API key")
            response = redirect("/", code=303)  # the key leaves the address bar, the history and the Referer
            response.set_cookie(COOKIE, session_token(api_key), httponly=True, samesite="Strict",
                                secure=request.is_secure)
            return response
        header, cookie = request.headers.get("X-API-Key"), request.cookies.get(COOKIE)
        if header is not None and hmac.compare_digest(header.encode(), api_key.encode()):
            return None
        if cookie is not None and hmac.compare_digest(cookie.encode(), session_token(api_key).encode()):
            return None
        return _error(401, "missing or wrong API key: send it in the X-API-Key header")

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(_BadBody)
    def _bad_body(exc: _BadBody):
        return _error(exc.status, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError):
        details = error_details(exc)
        return _error(422, f"invalid request: {details[0]['field']}: {details[0]['problem']}", details)

    @app.errorhandler(DataError)
    def _bad_data(exc: DataError):
        return _error(422, f"invalid history rows: {exc}")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        messages = {413: f"request body too large (limit {MAX_BODY_BYTES // (1024 * 1024)} MB)"}
        body, status = _error(exc.code or 500, messages.get(exc.code, exc.description or exc.name))
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                body.headers[name] = value
        return body, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # a defect, not bad input: say so without leaking internals
        app.logger.exception("unexpected error")
        return _error(500, f"internal error ({type(exc).__name__}); the request was not scored")

    @app.get("/health")
    def health():
        status, warnings = log_status()
        body = {"status": "ok", "model_loaded": True, "model_version": model.version, "inference_log": status}
        changes = model.disk_changes()
        # still serving the verified snapshot; a restart of the service would not start
        warnings = [f"{c}: serving the copy verified at start; fix the file or run `dvc pull` before restarting "
                    f"the service" for c in changes] + warnings
        if warnings:
            body["warnings"] = warnings
        return jsonify(body)

    @app.get("/model")
    def model_info():
        return jsonify({**model.info(), "inference_log": log_status()[0]})

    @app.get("/openapi.json")
    def openapi():
        return jsonify(openapi_document())

    @app.post("/predict")
    def predict():
        body = PredictRequest.model_validate(_json_body())
        rows = as_raw_rows(body.rows(), "application_test")
        history = None
        if body.history is not None:
            history = {t: as_raw_rows(getattr(body.history, t) or [], t) for t in type(body.history).model_fields}
        placeholder = [r.setdefault("SK_ID_CURR", -(i + 1)) < 0 for i, r in enumerate(rows)]
        x = model.raw_matrix(rows, history)[:, model.model_index]
        decisions = model.decide(x)
        ids = [None if p else r["SK_ID_CURR"] for r, p in zip(rows, placeholder)]
        for i, d in enumerate(decisions):
            d["SK_ID_CURR"] = ids[i]
            if body.explain:
                d["explanation"] = model.explain(x[i])
        record(ids, x, decisions)
        if body.application is not None:
            return jsonify(decisions[0])
        return jsonify({"model_version": model.version, "count": len(decisions), "predictions": decisions})

    def _known(client: int) -> int:
        row = model.known(client)
        if row is None:
            raise _BadBody(404, f"client {client} is not among the application_test clients of the last pipeline run")
        return row

    @app.get("/clients")
    def clients():
        try:
            limit = int(request.args.get("limit", 50))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            return _error(400, "limit and offset must be whole numbers")
        if not (1 <= limit <= MAX_BATCH and offset >= 0):
            return _error(400, f"limit must be 1..{MAX_BATCH} and offset >= 0")
        ids = model.client_ids[offset:offset + limit]
        decisions = model.decide(model.client_features[offset:offset + limit]) if len(ids) else []
        return jsonify({"total": len(model.client_ids), "offset": offset,
                        "clients": [{"SK_ID_CURR": int(i), "probability": d["probability"], "decision": d["decision"]}
                                    for i, d in zip(ids, decisions)]})

    @app.get("/clients/<client_id:client>")
    def client(client: int):
        row = _known(client)
        x = model.client_features[row:row + 1]
        decision = model.decide(x)[0]
        record([client], x, [decision], kind="view")
        return jsonify({"SK_ID_CURR": client, **decision, "client": model.client_fields(row),
                        "key_values": model.key_values(row)})

    @app.get("/clients/<client_id:client>/explain")
    def client_explain(client: int):
        row = _known(client)
        x = model.client_features[row]
        return jsonify({"SK_ID_CURR": client, **model.decide(x[None, :])[0], "explanation": model.explain(x),
                        "key_values": model.key_values(row)})

    @app.post("/clients/<client_id:client>/whatif")
    def client_what_if(client: int):
        row = _known(client)
        changes = WhatIfRequest.model_validate(_json_body()).model_dump(exclude_none=True)
        x, keys = model.what_if(row, changes)
        return jsonify({"SK_ID_CURR": client, "changes": changes, **model.decide(x[None, :])[0],
                        "explanation": model.explain(x), "key_values": keys})

    @app.get("/reference")
    def reference():
        """What the dashboard draws clients against: key fields' quantiles among granted and refused clients."""
        return jsonify({"key_fields": model.key_fields, "labels": {k: model.labels.get(k, k) for k in model.key_fields},
                        "quantiles": [round(q, 2) for q in np.linspace(0.05, 0.95, 19)],
                        "distributions": model.reference.distributions, "threshold": model.threshold})

    @app.get("/")
    def dashboard():
        return render_template("dashboard.html", version=model.version, threshold=model.threshold,
                               year=dt.date.today().year)

    return app
