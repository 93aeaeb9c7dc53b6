"""Fill the documentation's generated blocks from metrics/ and benchmarks/results/: no figure is typed by hand.

A page marks a block with two comment lines; everything between them is rewritten from the JSON files:

    <!-- generated:results -->
    <!-- /generated -->

    python tools/docs_figures.py           # rewrite the blocks of README.md and docs/**/*.md
    python tools/docs_figures.py --check   # exit 1, naming the page and block, when one is stale (CI)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- generated:([a-z0-9-]+) -->\n)(.*?)(<!-- /generated -->)", re.S)
RENDERERS: dict[str, Callable[[], str]] = {}


def renders(name: str):
    def register(function: Callable[[], str]) -> Callable[[], str]:
        RENDERERS[name] = function
        return function
    return register


def load(path: str) -> dict:
    return json.loads((ROOT / path).read_text())


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def source(*paths: str, commit: str | None = None) -> str:
    where = ", ".join(f"`{p}`" for p in paths)
    return f"\n\n*From {where}" + (f", measured at commit `{commit[:7]}`" if commit else "") + ".*"


def _commit(data: dict) -> str | None:
    return data.get("recorded_in_commit") or (data.get("code") or {}).get("commit")


@renders("results")
def results() -> str:
    train, threshold = load("metrics/train.json"), load("metrics/threshold.json")
    holdout = threshold["validation"]["holdout"]
    ci = holdout["uncertainty"]
    interval = train["holdout_auc_interval"]
    rows = [
        ["hold-out AUC (served ensemble)", f"{train['holdout_auc']:.4f}",
         f"{interval['low']:.4f} – {interval['high']:.4f} (DeLong)"],
        ["Gini (calibrated)", f"{holdout['gini']:.4f}", f"{ci['gini']['low']:.4f} – {ci['gini']['high']:.4f} (bootstrap)"],
        ["KS", f"{holdout['ks']:.4f}", f"{ci['ks']['low']:.4f} – {ci['ks']['high']:.4f} (bootstrap)"],
        ["expected calibration error", f"{threshold['holdout_ece_calibrated']:.4f}",
         f"{threshold['holdout_ece_raw']:.4f} before calibration"],
        ["Brier score", f"{threshold['holdout_brier_calibrated']:.4f}",
         f"{threshold['holdout_brier_raw']:.4f} before calibration"],
        ["threshold (calibrated probability of default)", f"{threshold['threshold']:.4f}",
         f"{threshold['calibration']} calibration"],
        ["approval rate at the threshold", f"{threshold['approval_rate']:.1%}", ""],
        ["business cost per client", f"{threshold['holdout_cost_per_client']:.4f}",
         f"scorecard challenger {threshold['challenger']['holdout_cost_per_client']:.4f}"],
        ["cross-validated AUC (out of fold)", f"{train['cv_auc']:.4f}", f"{train['n_features']} features"],
    ]
    clients = train["clients"]
    return (f"Default run: {clients['train']:,} training and {clients['holdout']:,} hold-out clients of the synthetic "
            "population; the hold-out is scored once.\n\n" + table(["figure", "value", "beside it"], rows)
            + source("metrics/train.json", "metrics/threshold.json"))


@renders("ensemble")
def ensemble() -> str:
    train = load("metrics/train.json")
    members = train["ensemble"]["members"]
    rows = [[name, f"{m['weight']:.3f}", f"{m['auc']:.4f}", f"{m['log_loss']:.4f}"]
            for name, m in sorted(members.items(), key=lambda kv: -kv[1]["weight"])]
    return (f"{train['ensemble']['fold_models']} fold models ({train['ensemble']['folds']} per member).\n\n"
            + table(["member", "weight", "out-of-fold AUC", "out-of-fold log-loss"], rows)
            + source("metrics/train.json"))


@renders("candidates")
def candidates() -> str:
    train = load("metrics/train.json")
    rows = [[name, f"{c['auc']:.4f}", f"{c['cost_per_client']:.4f}", f"{c['recall']:.3f}",
             "" if c["precision"] is None else f"{c['precision']:.3f}"]
            for name, c in sorted(train["candidates"].items(), key=lambda kv: -kv[1]["auc"])]
    return (table(["candidate", "out-of-fold AUC", "cost per client", "recall", "precision"], rows)
            + source("metrics/train.json"))


@renders("fairness")
def fairness() -> str:
    fair = load("metrics/explain.json")["fairness"]
    rows = []
    for attribute in ("gender", "age_band"):
        for group, g in sorted(fair[attribute]["groups"].items()):
            rows.append([attribute, group, g["clients"], f"{g['approval_rate']:.3f}", f"{g['adverse_impact_ratio']:.3f}",
                         f"{g['false_negative_rate']:.3f}", f"{g['false_positive_rate']:.3f}"])
    gaps = "; ".join(f"{a}: equalised-odds difference {fair[a]['equalized_odds_difference']:.3f}"
                     for a in ("gender", "age_band"))
    older = fair.get("older_applicants") or {}
    extra = (f"\n\nApplicants of 62 and over scored worse at their age than at 61: {older['worse_for_age']} of "
             f"{older['clients']}." if "worse_for_age" in older else "")
    return (table(["attribute", "group", "clients", "approval rate", "adverse impact ratio", "false negative rate",
                   "false positive rate"], rows) + f"\n\n{gaps}." + extra + source("metrics/explain.json"))


@renders("portfolio")
def portfolio() -> str:
    sys.path.insert(0, str(ROOT))
    from creditscore.decision.portfolio import level_key

    explain = load("metrics/explain.json")
    if "portfolio" not in explain:
        return "Not in this run's metrics."
    b = explain["portfolio"]
    text = (f"Approved book at the threshold: {b['approved']:,} of {b['clients']:,} hold-out clients, exposure "
            f"{b['exposure_approved']:,.0f}, expected loss {b['expected_loss_approved']:,.0f} "
            f"({b['expected_loss_rate_approved']:.2%} of the exposure, LGD {b['lgd']}); the hold-out's labels give "
            f"{b['observed_loss_approved']:,.0f} on the same book.\n\n")
    rows = [[name, level, v["clients"], v["defaulters"], f"{v['default_rate']:.3f}", f"{v['approval_rate']:.3f}",
             "" if v["auc"] is None else f"{v['auc']:.4f}", "too small" if v["too_small"] else ""]
            for name, levels in explain["segments"].items()
            for level, v in sorted(levels.items(), key=lambda kv: level_key(kv[0]))]
    return text + table(["segment", "level", "clients", "defaulters", "default rate", "approval rate", "AUC", ""],
                        rows) + source("metrics/explain.json")


@renders("performance")
def performance_figures() -> str:
    d = load("metrics/performance.json")
    rows = [["estimated AUC, every scored client", f"{d['estimated']['auc']:.4f}"],
            ["clients scored / with a matured outcome", f"{d['clients_scored']:,} / {d['matured']:,}"]]
    r = d.get("realised")
    if r:
        rows += [["realised AUC (estimated beforehand)", f"{r['auc']:.4f} ({r['estimated_auc']:.4f})"],
                 ["default rate observed / predicted", f"{r['default_rate']:.4f} / {r['predicted_default_rate']:.4f}"]]
    return table(["figure", "value"], rows) + source("metrics/performance.json")


@renders("drift")
def drift() -> str:
    d = load("metrics/drift.json")
    rows = [["current data", d["current_source"]], ["clients (reference / current)", f"{d['n_reference']:,} / {d['n_current']:,}"],
            ["features compared", d["n_features"]], ["features drifted", d["n_drifted"]],
            ["score PSI", f"{d['score_psi']:.4f} ({d['score_psi_band']})"], ["alert", "yes" if d["alert"] else "no"]]
    text = table(["figure", "value"], rows)
    if "stability" in d:  # the characteristic stability table: bands stable < 0.1 <= watch <= 0.25 < act
        text += "\n\nCharacteristic stability (PSI, training clients against current applications):\n\n" + table(
            ["characteristic", "PSI", "band", "missing (training)", "missing (current)"],
            [[f"`{r['characteristic']}`", f"{r['psi']:.4f}", r["band"], f"{r['missing_reference']:.1%}",
              f"{r['missing_current']:.1%}"] for r in d["stability"]])
    return text + source("metrics/drift.json")


@renders("real")
def real() -> str:
    d = load("benchmarks/results/real.json")
    rows = []
    for name, data in d["datasets"].items():
        splits = data["splits"]
        commits = sorted({s.get("commit", "") for s in splits.values()})
        auc = data["median_auc"]
        floored = f" (floored {auc['kernel_lightgbm_floored']:.4f})" if "kernel_lightgbm_floored" in auc else ""
        rows.append([name, len(splits), f"{auc['pipeline']:.4f}", f"{auc['kernel_lightgbm']:.4f}{floored}",
                     f"{data['median_pipeline_minus_kernel']:+.4f}", f"{data['mean_pipeline_minus_kernel']:+.4f}",
                     f"{data['splits_above_kernel']} / {len(splits)}",
                     data.get("splits_above_kernel_beyond_noise", ""), ", ".join(f"`{c[:7]}`" for c in commits)])
    return (table(["data", "splits", "pipeline AUC (median)", "kernel AUC (median)", "difference (median)",
                   "difference (mean)", "splits above the kernel", "above beyond the 95% interval", "commits"], rows)
            + "\n\nThe differences are the pipeline minus the published kernel on the same split. On the 1,000-client "
            "sample the published kernel's leaves are too large to split at all; the floored kernel lowers them."
            + source("benchmarks/results/real.json"))


@renders("realism")
def realism() -> str:
    d = load("benchmarks/results/realism.json")
    rows = [[name, f(c.get("lgb_auc")), f(c.get("lgb_minus_lr")), f(c.get("additive_gap")), f(c.get("history_gain"))]
            for name, c in d["checks"].items() for f in [_check]]
    return (table(["population", "LightGBM AUC", "LightGBM − logistic regression", "additive gap",
                   "history gain"], rows) + "\n\nA check outside its target range is marked ✗." +
            source("benchmarks/results/realism.json", commit=_commit(d)))


def _check(c: dict | None) -> str:
    if not c or c.get("value") is None:
        return ""
    return f"{c['value']:.4f} {'✓' if c.get('ok') else '✗'}"


@renders("feature-groups")
def feature_groups() -> str:
    d = load("benchmarks/results/feature_groups.json")
    rows = [[name, r["n_features"], f"{r['cv_auc']:.4f}", f"{r['gain_vs_application']:+.4f}",
             f"{r['loss_vs_all']:+.4f}" if "loss_vs_all" in r else ""] for name, r in d["results"].items()]
    return (f"{d['clients']:,} {d['data']} clients, {d['folds']}-fold LightGBM.\n\n"
            + table(["feature groups", "features", "CV AUC", "vs application only", "loss vs all"], rows)
            + source("benchmarks/results/feature_groups.json", commit=_commit(d)))


@renders("scale")
def scale() -> str:
    d = load("benchmarks/results/scale.json")
    stages = list(d["runs"][0]["stages"])
    stages += [s for r in d["runs"] for s in r["stages"] if s not in stages]
    rows = [[f"{r['labelled_clients']:,}", *[f"{r['stages'][s]['seconds']:.0f}" if s in r["stages"] else "" for s in stages],
             f"{r['total_seconds']:.0f}", f"{r['peak_mib'] / 1024:.2f}", f"{r['holdout_auc']:.4f}",
             f"`{r.get('commit', _commit(d))[:7]}`"] for r in d["runs"]]
    return (f"Seconds per stage, {d['cores']} cores; each size at its own commit.\n\n"
            + table(["labelled clients", *stages, "total s", "peak GiB", "hold-out AUC", "commit"], rows)
            + source("benchmarks/results/scale.json"))


@renders("pipeline")
def pipeline() -> str:
    d = load("benchmarks/results/pipeline.json")
    rows = [[s, f"{v['seconds']:.1f}", f"{v['peak_mib']:.0f}"] for s, v in d["stages"].items()]
    rows.append(["total", f"{d['total_seconds']:.1f}", f"{d['peak_mib']:.0f}"])
    return (f"{d['labelled_clients']:,} labelled clients.\n\n" + table(["stage", "seconds", "peak MiB"], rows)
            + source("benchmarks/results/pipeline.json", commit=_commit(d)))


@renders("api")
def api() -> str:
    d = load("benchmarks/results/api.json")
    rows = [[name, t["what"], f"{t['throughput_rps']:.0f}", f"{t['p50_ms']:.1f}", f"{t['p99_ms']:.1f}"]
            for name, t in d["targets"].items()]
    s = d["settings"]
    return (f"wrk, {s['connections']} connections, {s['duration_s']} s × {s['repeats']} repeats, "
            f"{d['machine']['cpus']} cores.\n\n" + table(["target", "what", "requests/s", "p50 ms", "p99 ms"], rows)
            + source("benchmarks/results/api.json", commit=_commit(d)))


@renders("faults")
def faults() -> str:
    """The faults on the served setup (sync workers behind nginx), beside the former threaded worker's figures."""
    d, before = load("benchmarks/results/faults.json"), load("benchmarks/results/faults_bounded_thread_worker.json")

    def killed(k: dict) -> str:
        return (f"{k['requests']:,} requests, {k['failures']} failed; log: {k['log']['lost_answered_rows']} answered "
                f"rows lost, {k['log']['duplicated_rows']} duplicated")

    def soaked(soak: dict) -> str:
        return f"{soak['seconds']} s, {soak['requests']:,} requests, {soak['failures']} failed, p99 {soak['p99_ms']} ms"

    slow = {"behind_nginx": "behind nginx", "no_proxy": "no proxy", "threaded": "no proxy",
            "sync": "no proxy"}
    rows = [["worker killed under load", killed(d["kill_under_load"]), killed(before["kill_under_load"])],
            *[[f"8 half-open connections ({slow[k]})", f"slowest /health {v['max_s']} s"
               + (f", {v['health_latency_s'].count(None)} of 5 failed" if None in v["health_latency_s"] else ""),
               f"slowest /health {before['slow_clients']['threaded']['max_s']} s" if k == "no_proxy" else "-"]
              for k, v in d["slow_clients"].items()],
            ["soak", soaked(d["soak"]), soaked(before["soak"])]]
    header = ["fault", f"sync workers behind nginx (`{_commit(d)}`)",
              f"former subclass of the threaded worker, no proxy (`{_commit(before)}`)"]
    return table(header, rows) + source("benchmarks/results/faults.json", commit=_commit(d))


@renders("footprint")
def footprint() -> str:
    d = load("benchmarks/results/footprint.json")
    rows = []
    for label, run in d["runs"].items():
        for arm, a in run["arms"].items():
            rows.append([f"`{label}`", f"{run['training_clients_summarised']:,}", run["environment"], arm.replace("_", " "),
                         f"{run['served_mib_with_clients' if arm == 'with_known_clients' else 'served_mib_without_clients']:.1f}",
                         f"{a['cold_start_seconds']:.1f}", f"{a['pss_mib_total']:.0f}",
                         " + ".join(f"{w:.0f}" for w in [a["pss_mib_master"], *a["pss_mib_workers"]]), run["commit"]])
    return (table(["run", "training clients", "environment", "arm", "served MiB", "cold start s", "PSS MiB",
                   "master + workers", "commit"], rows)
            + "\n\nLimits: {served_mib} MiB of served files, {pss_mib} MiB PSS, {cold_start_seconds} s cold start.".format(
                **next(iter(d["runs"].values()))["limits"])
            + source("benchmarks/results/footprint.json"))


@renders("latency")
def latency() -> str:
    d = load("benchmarks/results/latency.json")
    rows = [[f"`{label}`", r["fold_models"], *[f"{r[e]['p50_ms']:.1f} / {r[e]['p99_ms']:.1f}" for e in ("predict", "explain")],
             r["commit"]] for label, r in d["runs"].items()]
    return (table(["models", "fold models", "`POST /predict` p50 / p99 ms", "`GET /clients/<id>/explain` p50 / p99 ms",
                   "commit"], rows)
            + "\n\nLimits: p99 at most 50 ms to score, 100 ms to explain." + source("benchmarks/results/latency.json"))


@renders("explain-sample")
def explain_sample() -> str:
    d = load("benchmarks/results/explain_sample.json")
    run, k = d["run"], d["run"]["top_k"]
    rows = [[f"{int(size):,}", f"{v['top_k_kept_mean']:.3f}", f"{v['top_k_kept_min']:.3f}",
             f"{v['spearman_top_2k_median']:.3f}", f"{v['top_5_same_order_share']:.2f}"] for size, v in d["sizes"].items()]
    return (f"Against every one of {run['holdout_rows']:,} hold-out rows ({run['features']} features, "
            f"{run['fold_models']} fold models; contributions {d['contribution_seconds_per_1000_rows']} s per 1,000 rows), "
            f"{d['draws']} seeded samples per size.\n\n"
            + table(["rows ranked", f"top {k} kept, mean", f"top {k} kept, worst", f"Spearman, first {2 * k}",
                     "top 5 in the same order"], rows)
            + source("benchmarks/results/explain_sample.json", commit=d["commit"]))


@renders("inference-log")
def inference_log() -> str:
    d = load("benchmarks/results/inference_log.json")
    rows = [[name, f"{t['throughput_rps']:.0f}", f"{t['p50_ms']:.1f}", f"{t['p99_ms']:.1f}"]
            for name, t in d["targets"].items()]
    return (table(["inference log", "POST /predict per s", "p50 ms", "p99 ms"], rows)
            + source("benchmarks/results/inference_log.json", commit=_commit(d)))


@renders("engineer")
def engineer() -> str:
    d = load("benchmarks/results/engineer.json")
    return (f"{d['clients']:,} clients, {d['n_features']} features: the Polars stage is {d['speedup']}× faster than "
            f"the pandas reference, which takes {d['memory_ratio_pandas_vs_polars']}× its peak memory; same values: "
            f"{'yes' if d['same_values'] else 'no'}." + source("benchmarks/results/engineer.json", commit=_commit(d)))


@renders("data")
def data() -> str:
    d = load("benchmarks/results/data.json")
    return (f"{d['clients']['total']:,} clients, {d['history_rows']:,} history rows: generate and prepare take "
            f"{d['generate_plus_prepare_seconds']} s; prepare is {d['speedup_prepare_vs_pandas']}× faster than a "
            f"pandas read and write of the same files, which takes {d['memory_ratio_pandas_vs_prepare']}× its peak memory."
            + source("benchmarks/results/data.json", commit=_commit(d)))


@renders("drift-bench")
def drift_bench() -> str:
    d = load("benchmarks/results/drift.json")
    rows = d["rows"]
    return (f"{rows['reference']:,} reference and {rows['current']:,} current rows, {d['features']} features, "
            f"{d['sample_per_side']:,} sampled per side: "
            f"{d['speedup_wall']}× faster than evidently on every row, which takes "
            f"{d['memory_ratio_full_vs_sampled']}× the peak memory." + source("benchmarks/results/drift.json", commit=_commit(d)))


@renders("ranges")
def ranges() -> str:
    d = load("benchmarks/results/ranges.json")
    rows = [[f"{size['labelled_clients']:,}", arm, f"{v['seconds']:.1f}", f"{v['peak_mib']:.0f}"]
            for size in d["sizes"].values() for arm, v in size["settings"].items()]
    return ("The engineer stage, one client range against ranges of a fixed size (medians of the repeats).\n\n"
            + table(["labelled clients", "ranges", "seconds", "peak MiB"], rows)
            + source("benchmarks/results/ranges.json", commit=_commit(d)))


EXAMPLE = {"application": {"AMT_INCOME_TOTAL": 135000, "AMT_CREDIT": 513000, "AMT_ANNUITY": 24700.5,
                           "DAYS_BIRTH": -14000, "EXT_SOURCE_2": 0.55}}


@renders("api-example")
def api_example() -> str:
    """One real request to the API, answered by the app on the pipeline's models (needs `dvc repro` first)."""
    sys.path.insert(0, str(ROOT))
    from app import create_app

    app = create_app({"INFERENCE_LOG": "off", "API_KEY": None, "MODEL_BUNDLE": None, "MODEL_REFERENCE": None})
    answer = app.test_client().post("/predict", json=EXAMPLE)
    if answer.status_code != 200:
        raise SystemExit(f"api-example: POST /predict answered {answer.status_code}: {answer.get_data(as_text=True)}")
    request = json.dumps(EXAMPLE)
    return ("```bash\ncurl -s localhost:8000/predict -H 'Content-Type: application/json' \\\n"
            f"  -d '{request}'\n```\n\n```json\n{json.dumps(answer.get_json(), indent=2)}\n```")


@renders("openapi")
def openapi() -> str:
    sys.path.insert(0, str(ROOT))
    from app.openapi import openapi_document

    doc = openapi_document()
    rows = [[f"`{method.upper()} {path}`", op.get("summary", ""), ", ".join(sorted(op.get("responses", {})))]
            for path, ops in doc["paths"].items() for method, op in ops.items() if isinstance(op, dict)]
    return (table(["endpoint", "what it does", "answers"], rows)
            + f"\n\nThe whole document: `GET /openapi.json` ({doc['openapi']}), from `app/openapi.py`.")


@renders("decisions")
def decisions() -> str:
    rows = []
    for path in sorted((ROOT / "docs" / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md")):
        lines = path.read_text().splitlines()
        title = lines[0].lstrip("# ").split(": ", 1)[-1]
        date = next((line.split(":", 1)[1].strip() for line in lines[:6] if line.startswith("Date:")), "")
        rows.append([f"[{path.stem[:4]}]({path.name})", date, title])
    return table(["record", "date", "decision"], rows)


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def filled(text: str, page: str) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(2)
        if name not in RENDERERS:
            raise SystemExit(f"{page}: unknown generated block {name!r}; known: {sorted(RENDERERS)}")
        return f"{match.group(1)}{RENDERERS[name]().rstrip()}\n{match.group(4)}"
    return BLOCK.sub(fill, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale pages instead of rewriting them")
    args = parser.parse_args()
    stale = []
    for path in pages():
        text = path.read_text()
        new = filled(text, str(path.relative_to(ROOT)))
        if new != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"stale generated figures in {', '.join(stale)}: run python tools/docs_figures.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
