"""Prediction API and relationship-manager dashboard: the Flask app factory (`gunicorn "app:create_app()"`).

`create_app(config)` loads and verifies the model once and registers two blueprints: `api` (app/api.py)
and `dashboard` (app/dashboard.py); app/http.py holds the rules every answer follows (JSON errors, security
headers, the API key). `config` overrides the environment, so a test builds an isolated app:
`create_app({"MODEL_BUNDLE": ..., "INFERENCE_LOG": "off", "API_KEY": None}).test_client()`.

Configuration (environment variables, or the same keys in `config`):
  MODEL_BUNDLE     path of the pipeline's bundle (default models/bundle.joblib)
  MODEL_REFERENCE  path of the reference stage's serving reference (default models/reference.joblib)
  MODEL_CLIENTS    path of the known clients the dashboard opens by id; "off" serves none; unset:
                   models/clients.joblib when the deployment has it, else none
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

import os
import sys

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.api import Served, api
from app.dashboard import dashboard
from app.http import MAX_BODY_BYTES, ClientId, api_key_from_environment, install
from app.service import ModelNotReady, ServingModel
from creditscore.config import ROOT
from creditscore.monitoring.inference_log import PostgresLog, from_environment
from creditscore.serving.artifacts import served_paths


def settings(config: dict | None) -> dict[str, str]:
    """The environment with `config` laid over it: a key set to None in `config` is unset."""
    env = dict(os.environ)
    for key, value in (config or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def create_app(config: dict | None = None) -> Flask:
    """Load and verify the model once; refuse to start (ModelNotReady, with what to run) if it is absent or corrupt.

    `config` overrides the environment variables above, key by key (tests pass an isolated one).
    """
    env = settings(config)
    paths = served_paths(env, ROOT / "models")
    try:
        api_key = api_key_from_environment(env)
        model = ServingModel(paths["bundle"], paths["reference"], paths.get("clients"))
    except (ModelNotReady, ValueError) as exc:
        print(f"credit-scoring API: cannot start: {exc}", file=sys.stderr, flush=True)
        raise
    app = Flask(__name__)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1)  # Render and Heroku end TLS at their router
    app.url_map.converters["client_id"] = ClientId
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    log = from_environment(ROOT / "logs" / "inference.sqlite", env)
    if isinstance(log, PostgresLog):
        log.ensure_schema()  # created or migrated now; an unreachable database is retried by later appends
    app.extensions["credit_api"] = Served(model, log)
    install(app, api_key)
    app.register_blueprint(api)
    app.register_blueprint(dashboard)
    return app
