"""A pull request's pipeline report: what changed in the metrics, the plots and the headline, as markdown.

    python -m tools.review_report BASE [--out reports/review]

BASE is a git revision (the pull request's base branch). The workspace is the other side: run it after
`dvc repro`. It writes `OUT/report.md`, with:

- the headline (winner, AUCs, cost, threshold, validator figures, the scorecard challenger, the registry's
  decision, drift) of both sides;
- every metric `dvc metrics diff BASE` reports as changed, in one table;
- each plot of `dvc.yaml` whose data changed, drawn base against workspace as `OUT/<name>.png`.

The GitHub workflow `.github/workflows/review.yml` posts it on the pull request with CML, which uploads the
images; here the script only writes files, so it can be tested on two commits of a clone.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = [  # (label, metrics file, dotted key, digits)
    ("winner", "train", "model", None), ("CV AUC", "train", "cv_auc", 4), ("hold-out AUC", "train", "holdout_auc", 4),
    ("hold-out cost per client", "threshold", "holdout_cost_per_client", 4),
    ("threshold (calibrated P(default))", "threshold", "threshold", 4),
    ("approval rate", "threshold", "approval_rate", 4), ("hold-out Gini", "threshold", "validation.holdout.gini", 4),
    ("hold-out KS", "threshold", "validation.holdout.ks", 4),
    ("hold-out expected calibration error", "threshold", "validation.holdout.ece", 4),
    ("scorecard hold-out AUC", "train", "scorecard.holdout_auc", 4),
    ("scorecard hold-out cost per client", "threshold", "challenger.holdout_cost_per_client", 4),
    ("registry alias", "register", "alias", None), ("features served", "probe", "n_features_kept", None),
    ("drift alert", "drift", "alert", None),
]


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"review_report: {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _at(rev: str | None, path: str, repo: Path) -> str | None:
    """A file's text at a git revision (None: the workspace), or None when it is not there."""
    if rev is None:
        file = repo / path
        return file.read_text() if file.exists() else None
    done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def _get(data: dict | None, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def fmt(value, digits: int | None = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def change(old, new, digits: int | None = 4) -> str:
    if isinstance(old, bool) or isinstance(new, bool) or not all(isinstance(v, (int, float)) for v in (old, new)):
        return "" if old == new else "changed"
    delta = new - old
    if delta == 0:
        return ""
    return f"{delta:+.{digits if digits is not None else 4}f}" if isinstance(delta, float) else f"{delta:+d}"


def headline(base: str, repo: Path) -> list[list[str]]:
    rows = []
    for label, name, key, digits in HEADLINE:
        path = f"metrics/{name}.json"
        old_text, new_text = _at(base, path, repo), _at(None, path, repo)
        old = _get(json.loads(old_text), key) if old_text else None
        new = _get(json.loads(new_text), key) if new_text else None
        rows.append([label, fmt(old, digits), fmt(new, digits), change(old, new, digits)])
    return rows


def metric_changes(base: str, repo: Path) -> list[list[str]]:
    """Every changed metric from `dvc metrics diff BASE --json`, sorted by file and key."""
    diff = json.loads(_run([sys.executable, "-m", "dvc", "metrics", "diff", base, "--json"], repo) or "{}")
    rows = []
    for file in sorted(diff):
        for key in sorted(diff[file]):
            entry = diff[file][key]
            old, new = entry.get("old"), entry.get("new")
            rows.append([file, key, fmt(old, 5), fmt(new, 5), change(old, new, 5)])
    return rows


def _plots(repo: Path) -> list[tuple[str, dict]]:
    """(file, definition) of every plot declared in dvc.yaml."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    out = []
    for stage in stages.values():
        for entry in stage.get("plots", []):
            (path, spec), = (entry.items() if isinstance(entry, dict) else [(entry, {})])
            out.append((path, spec or {}))
    return out


def changed_plots(base: str, repo: Path, out: Path) -> list[tuple[str, str]]:
    """Draw each changed x/y plot, base against workspace; (plot file, image name) of those drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = []
    for path, spec in _plots(repo):
        old_text, new_text = _at(base, path, repo), _at(None, path, repo)
        if old_text == new_text or new_text is None:
            continue
        x, y = spec.get("x"), spec.get("y")
        name = path.removeprefix("plots/").replace("/", "_").removesuffix(".json") + ".png"
        fig, ax = plt.subplots(figsize=(6, 3.6))
        if spec.get("template") == "confusion":
            counts = {}
            for side, text in (("base", old_text), ("this PR", new_text)):
                for row in json.loads(text) if text else []:
                    counts.setdefault((row[y], row[x]), {})[side] = counts.get((row[y], row[x]), {}).get(side, 0) + 1
            cells = sorted(counts)
            ax.bar([i - 0.2 for i in range(len(cells))], [counts[c].get("base", 0) for c in cells], 0.4, label="base",
                   hatch="//", color="#bbbbbb", edgecolor="#444444")
            ax.bar([i + 0.2 for i in range(len(cells))], [counts[c].get("this PR", 0) for c in cells], 0.4,
                   label="this PR", color="#1f5fa8")
            ax.set_xticks(range(len(cells)), [f"{a} / {p}" for a, p in cells], fontsize=8)
            ax.set_ylabel("clients (actual / predicted)")
        else:
            for side, text, style in (("base", old_text, {"linestyle": "--", "color": "#777777"}),
                                      ("this PR", new_text, {"color": "#1f5fa8"})):
                rows = json.loads(text) if text else []
                if rows:
                    ax.plot([r[x] for r in rows], [r[y] for r in rows], label=side, **style)
            ax.set_xlabel(x)
            ax.set_ylabel(y)
        ax.set_title(path, fontsize=9)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        drawn.append((path, name))
    return drawn


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def report(base: str, repo: Path, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    base_sha = _run(["git", "rev-parse", "--short", base], repo).strip()
    changes = metric_changes(base, repo)
    plots = changed_plots(base, repo, out)
    parts = [f"## Pipeline review against `{base}` ({base_sha})",
             "Reproduced with `dvc repro` on this branch. Headline (the model card's summary figures):",
             table(["", "base", "this PR", "change"], headline(base, repo)),
             f"### Every changed metric ({len(changes)})",
             table(["file", "metric", "base", "this PR", "change"], changes) if changes else "No metric changed.",
             f"### Changed plots ({len(plots)})",
             "\n\n".join(f"![{path}: base dashed, this PR solid]({name})" for path, name in plots)
             if plots else "No plot changed."]
    text = "\n\n".join(parts) + "\n"
    (out / "report.md").write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="git revision to compare the workspace with (the pull request's base)")
    parser.add_argument("--out", default="reports/review", help="folder for report.md and the plot images")
    parser.add_argument("--repo", default=str(ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repo = Path(args.repo)
    report(args.base, repo, (repo / args.out) if not Path(args.out).is_absolute() else Path(args.out))
    print(Path(args.out) / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
