"""The relationship managers' dashboard blueprint: one page, drawn by static/dashboard.js from the API's answers."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template

from app.api import served

dashboard = Blueprint("dashboard", __name__)


@dashboard.get("/")
def page():
    model = served().model
    return render_template("dashboard.html", version=model.version, threshold=model.threshold,
                           year=dt.date.today().year)
