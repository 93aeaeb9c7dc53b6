"""The smallest useful scoring service, the yardstick of `benchmarks/bench_api.py`.

A Flask app with one route: POST /score takes a ready feature vector (a JSON list of numbers, null for
missing) and returns the LightGBM booster's probability, scored with `Booster.predict` on a float64 row
with one thread (the fast path). No validation, no feature work, no logging. Served by gunicorn with the
repository's config:

    MINIMAL_MODEL=booster.txt gunicorn --config app/gunicorn.conf.py "benchmarks.minimal_scorer:create_app()"
"""
from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
from flask import Flask, jsonify, request


def create_app(model_file: str | None = None) -> Flask:
    booster = lgb.Booster(model_file=model_file or os.environ["MINIMAL_MODEL"])
    n_features = booster.num_feature()
    app = Flask(__name__)

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    @app.post("/score")
    def score():
        x = np.asarray(request.get_json(), dtype=np.float64).reshape(1, n_features)  # null -> nan
        return jsonify({"probability": float(booster.predict(x, num_threads=1)[0])})

    return app
