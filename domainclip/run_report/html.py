"""``report.html`` from a run's contents: plain HTML and inline CSS, images as data URIs, and one small inline
script that sorts a table by the clicked column. No framework, no network: the file opens anywhere and can be
mailed as it is."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from domainclip.run_report.contents import RunContents
from domainclip.run_report.figures import data_uri, training_curves
from domainclip.run_report.files import EXPLAINED_DIR, PREVIEWS_DIR, PROMPTS_FILE, RETRIEVAL_EXAMPLES_FILE, preview_name
from domainclip.run_report.tables import finding_rows, headline_rows, scalar_metrics

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2630;background:#f6f7f9}
main{max-width:1160px;margin:0 auto;padding:20px 28px 60px;background:#fff;box-shadow:0 0 12px #0001}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:30px 0 8px;border-bottom:2px solid #e3e7ec;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}.muted{color:#5d6b7a}.desc{margin:2px 0 12px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #e3e7ec;
text-align:left;vertical-align:top}th{background:#f0f3f6;font-weight:600}td.n{text-align:right;
font-variant-numeric:tabular-nums}table.sortable th{cursor:pointer}table.sortable th:after{content:" \\2195";
color:#9aa7b4}.kv td:first-child{color:#5d6b7a;white-space:nowrap}.grid{display:flex;flex-wrap:wrap;gap:10px}
.grid figure{margin:0;width:250px}.grid img{width:250px;border:1px solid #e3e7ec}figcaption{font-size:12px;
color:#5d6b7a}.wide img{max-width:100%;border:1px solid #e3e7ec}.banner{padding:10px 14px;border-radius:6px;
margin:12px 0}.incomplete{background:#fff4e0;border:1px solid #f0b64e}.complete{background:#e9f6ec;
border:1px solid #7cc48a}.query{margin:14px 0 4px;padding:8px 10px;background:#f6f7f9;border-left:3px solid #8aa0b6;
font-size:13px;white-space:pre-wrap}.found{display:flex;gap:8px;flex-wrap:wrap}.found figure{margin:0;width:164px}
.found img{width:160px;border:3px solid #d64545}.found .right img{border-color:#2f9e44}.found figcaption{
overflow-wrap:anywhere}.grid.large figure,.grid.large img{width:400px}
.tag{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;background:#eef1f4}
.tag.truth{background:#e1f3e5}.tag.silver{background:#fdf0d5}.tag.mixed{background:#fde3e3}details{margin:8px 0}
summary{cursor:pointer;color:#2c5d8a}nav{margin:10px 0 0}nav a{color:#2c5d8a;text-decoration:none}
code{font-size:12px;background:#f0f3f6;padding:0 3px;border-radius:3px}
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.dataset.order !== "up"; th.dataset.order = up ? "up" : "down";
      function value(row) { var t = row.cells[column].textContent.trim(), n = parseFloat(t);
        return isNaN(n) ? t.toLowerCase() : n; }
      rows.sort(function (a, b) { var x = value(a), y = value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

ROC_SECTIONS = (("zero-shot ROC per finding", ""), ("linear probe ROC per finding", "linear_probe/"))
QUERY_CHARS = 600


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 3) -> str:
    """A figure as the report prints it: floats to ``digits`` decimals (small p-values in scientific notation),
    None / NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return esc(value)
    if isinstance(value, float) and 0 < abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], css: str = "", numeric: Sequence[int] = ()) -> str:
    """A table from already-escaped cell HTML; ``numeric`` column indices are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if k in numeric else f"<td>{c}</td>" for k, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure(src: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def source_tag(source: Any) -> str:
    return f'<span class="tag {esc(source)}">{esc(source)}</span>' if source else "-"


def _header(run: RunContents) -> str:
    info, metrics, recipe = run.info, run.metrics, run.recipe
    described = info.get("recipe", {})
    domain = recipe.get("domain") or described.get("domain", "?")
    layout = (recipe.get("data") or {}).get("layout") or described.get("layout", "?")
    package = info.get("package", {})
    hardware = info.get("hardware", {})
    gpus = ", ".join(hardware.get("gpus") or []) or "none"
    rows = [
        ("recipe", f"<code>{esc(described.get('file') or 'recipe.yaml (resolved, in the run folder)')}</code>"),
        ("domain / layout", f"<code>{esc(domain)}</code> / <code>{esc(layout)}</code>"),
        ("package", esc(f"domainclip {package.get('version', '?')}, commit {package.get('commit') or 'unknown'}")),
        ("started", esc(info.get("started", "-"))),
        ("wall time", f"{number(metrics.get('wall_seconds'), 0)} s"),
        ("peak RSS through training", f"{number(metrics.get('memory.peak_rss_mb_through_training'), 0)} MB"),
        (
            "hardware",
            esc(
                f"{hardware.get('cpu_threads', '?')} CPU threads (torch {hardware.get('torch_threads', '?')}), "
                f"GPUs: {gpus}, {hardware.get('processes', 1)} process(es); {hardware.get('platform', '')}"
            ),
        ),
    ]
    if run.complete:
        banner = '<div class="banner complete">Complete: trained and evaluated.</div>'
    else:
        missing = ", ".join(run.missing) or "the evaluation metrics"
        banner = (
            '<div class="banner incomplete"><b>Incomplete run.</b> It stopped before evaluation finished '
            f"(missing: {esc(missing)}). What it left is shown below.</div>"
        )
    notes = "".join(f'<p class="muted">Note: {esc(n)}</p>' for n in run.notes)
    return (
        f"<h1>Run report: {esc(run.root.name)}</h1>"
        f'<p class="desc muted">{esc(recipe.get("description") or described.get("description") or "")}</p>'
        + banner
        + notes
        + '<table class="kv">'
        + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _data(run: RunContents) -> str:
    data = run.info.get("data")
    if not data:
        return ""
    parts = ["<h2 id='data'>Data</h2>"]
    splits = data.get("splits", {})
    parts.append(table(["split", "records"], [(esc(s), str(n)) for s, n in splits.items()], numeric=(1,)))
    classes = data.get("classes", {})
    if classes:
        names = sorted({c for counts in classes.values() for c in counts})
        rows = [[esc(c)] + [str(classes.get(s, {}).get(c, 0)) for s in classes] for c in names]
        parts.append(
            "<h3>Classes per split</h3>" + table(["class", *classes], rows, numeric=range(1, len(classes) + 1))
        )
    return "".join(parts)


def _training(run: RunContents) -> str:
    curves = training_curves(run.training)
    if not curves:
        return "<h2 id='training'>Training</h2><p class='muted'>No training steps were logged.</p>"
    pictures = "".join(
        f'<div class="wide"><img src="{data_uri(png)}" alt="training curves, stage {esc(s)}"></div>'
        for s, png in curves.items()
    )
    return f"<h2 id='training'>Training</h2><p class='muted'>From <code>logs/metrics.jsonl</code>.</p>{pictures}"


def _headline(run: RunContents) -> str:
    rows = headline_rows(run.metrics)
    if not rows:
        return ""
    n = run.metrics.get("evaluate.n")
    split = run.metrics.get("evaluate.split", "?")
    body = [
        (
            esc(r["label"]),
            number(r["value"]),
            "-" if r["ci"][0] is None else f"{number(r['ci'][0])} - {number(r['ci'][1])}",
            source_tag(r["source"]),
            number(r["chance"]),
            f"<code>{esc(r['key'])}</code>",
        )
        for r in rows
    ]
    return (
        f"<h2 id='evaluation'>Evaluation</h2><p class='muted'>Split <code>{esc(split)}</code>, n = {esc(n)}. "
        "95 % bootstrap intervals; <span class='tag truth'>truth</span> means scored against the dataset's own labels, "
        "<span class='tag silver'>silver</span> against labels the report structurer read from the texts.</p>"
        + table(["figure", "value", "95 % CI", "labels", "chance", "key"], body, "sortable", numeric=(1, 4))
    )


def _findings(run: RunContents) -> str:
    rows = finding_rows(run.metrics, run.info)
    if not rows:
        return ""
    body = [
        (
            esc(r["finding"]) + (" <span class='tag'>fallback</span>" if r["fallback"] else ""),
            number(r["zeroshot"]),
            number(r["prompts_alone"]),
            number(r["probe"]),
            number(r["train_reports"]),
            number(r["evaluated"]),
        )
        for r in rows
    ]
    note = (
        "<p class='muted'><span class='tag'>fallback</span>: the prompt pair pointed the wrong way on the validation "
        "split, so the zero-shot column scores report prototypes instead; 'prompts alone' is without it.</p>"
        if any(r["fallback"] for r in rows)
        else ""
    )
    header = [
        "finding",
        "zero-shot AUC",
        "prompts alone",
        "probe AUC",
        "prevalence, train reports",
        "prevalence, evaluated",
    ]
    return "<h3>Per finding</h3>" + table(header, body, "sortable", numeric=range(1, 6)) + note


def _plot_grid(title: str, paths: Sequence[Path], caption=lambda p: p.stem, css: str = "grid") -> str:
    if not paths:
        return ""
    pictures = "".join(figure(data_uri(p), caption(p)) for p in paths)
    return f"<h3>{esc(title)}</h3><div class='{css}'>{pictures}</div>"


def _plots(run: RunContents) -> tuple[str, set[Path]]:
    """The evaluation plots by kind, and the set of PNGs shown (the rest go under 'other plots')."""
    plots, shown, parts = run.plots, set(), []

    def grid(title: str, paths: list[Path], caption=lambda p: p.stem.replace("_", " "), css: str = "grid") -> None:
        paths = [p for p in paths if p.is_file()]
        shown.update(paths)
        parts.append(_plot_grid(title, paths, caption, css))

    for title, sub in ROC_SECTIONS:
        grid(title, sorted((plots / sub).glob("roc_*.png")), lambda p: p.stem.removeprefix("roc_").replace("_", " "))
    grid("Calibration", sorted(plots.glob("calibration_*.png")) + sorted(plots.glob("linear_probe/calibration_*.png")))
    grid("Confusion matrices", sorted(plots.glob("confusion_*.png")), css="grid large")  # class names need room
    km = [plots / "km_risk_groups.png", *sorted(plots.glob("*_findings/km_risk_groups.png"))]
    km_caption = lambda p: "image embedding" if p.parent == plots else p.parent.name.replace("_", " ")
    grid("Kaplan-Meier by predicted risk (split at the training median)", km, km_caption)
    grid("Regression: predicted vs true", sorted(plots.glob("regression_*.png")))
    return "".join(parts), shown


def _retrieval_examples(run: RunContents) -> str:
    examples = run.json_in_plots(RETRIEVAL_EXAMPLES_FILE)
    if not examples:
        return ""
    previews = run.plots / PREVIEWS_DIR
    intro = (
        "<h2 id='retrieval-examples'>Retrieval examples</h2><p class='muted'>Held-out texts and the five images "
        "ranked first by cosine similarity; a green frame marks a right one (the text's own image, or one sharing "
        "its report or saying the same).</p>"
    )
    parts = [intro]
    for example in examples:
        query = example["query"]
        shown = query if len(query) <= QUERY_CHARS else query[:QUERY_CHARS] + " ..."
        parts.append(
            f"<div class='query'><b>{esc(example['record'])}</b> (first right image at rank "
            f"{esc(example['first_right_rank'])}): {esc(shown)}</div><div class='found'>"
        )
        for rank, (rid, right, score) in enumerate(zip(example["found"], example["right"], example["scores"]), 1):
            preview = previews / preview_name(rid)
            picture = f'<img src="{data_uri(preview)}" alt="{esc(rid)}">' if preview.is_file() else ""
            parts.append(
                f"<figure class='{'right' if right else 'wrong'}'>{picture}<figcaption>{rank}. {esc(rid)}<br>"
                f"similarity {number(score)}</figcaption></figure>"
            )
        parts.append("</div>")
    return "".join(parts)


def _explained(run: RunContents) -> tuple[str, set[Path]]:
    paths = sorted((run.plots / EXPLAINED_DIR).glob("*.png"))
    if not paths:
        return "", set()
    pictures = "".join(
        f"<h3>{esc(p.stem)}</h3><div class='wide'><img src='{data_uri(p)}' alt='{esc(p.stem)}'></div>" for p in paths
    )
    intro = (
        "<h2 id='what-the-model-looked-at'>What the model looked at</h2>"
        "<p class='muted'>Drawn by the domain for a few evaluation images.</p>"
    )
    return intro + pictures, set(paths)


def _prompts(run: RunContents) -> str:
    prompts = run.json_in_plots(PROMPTS_FILE)
    if not prompts or not (prompts.get("findings") or prompts.get("classes")):
        return ""
    parts = ["<h2 id='zero-shot-prompts'>Zero-shot prompts</h2>"]
    if prompts.get("findings"):
        rows = [
            (esc(name), "<br>".join(map(esc, p["positive"])), "<br>".join(map(esc, p["negative"])) or "-")
            for name, p in prompts["findings"].items()
        ]
        parts.append(
            f"<p class='muted'>Each finding's positive ensemble against {esc(prompts.get('finding_negatives'))}.</p>"
            + table(["finding", "positive prompts", "negative prompts"], rows)
        )
    if prompts.get("classes"):
        rows = [(esc(c), "<br>".join(map(esc, s))) for c, s in prompts["classes"].items()]
        parts.append("<h3>Class prompts</h3>" + table(["class", "prompts"], rows))
    return "".join(parts)


def _vocabulary(run: RunContents) -> str:
    prevalence = run.info.get("vocabulary_prevalence") or {}
    if not prevalence:
        return ""
    used = set(run.info.get("data", {}).get("findings", {}))
    rows = [
        (esc(name) + (" <span class='tag'>in the recipe</span>" if name in used else ""), number(value))
        for name, value in sorted(prevalence.items(), key=lambda item: -(item[1] or 0.0))
    ]
    return (
        "<h3>The vocabulary's findings in the training texts</h3><p class='muted'>Every finding of the recipe's "
        "vocabulary with the share of training texts that state it (silver labels), most frequent first.</p>"
        + table(["finding", "prevalence, train texts"], rows, "sortable", numeric=(1,))
    )


def _other_plots(run: RunContents, shown: set[Path]) -> str:
    skip = (run.plots / PREVIEWS_DIR, run.plots / EXPLAINED_DIR)
    rest = sorted(p for p in run.plots.rglob("*.png") if p not in shown and not any(d in p.parents for d in skip))
    caption = lambda p: str(p.relative_to(run.plots).with_suffix(""))
    return _plot_grid("Other plots", rest, caption) if rest else ""


def _all_metrics(run: RunContents) -> str:
    if not run.metrics:
        return ""
    rows = [(f"<code>{esc(k)}</code>", number(v, 4)) for k, v in scalar_metrics(run.metrics)]
    return (
        f"<details id='all-metrics'><summary>All {len(rows)} metrics (<code>metrics.json</code>)</summary>"
        + table(["key", "value"], rows, "sortable", numeric=(1,))
        + "</details>"
    )


def render(run: RunContents) -> str:
    plots, shown = _plots(run) if run.metrics else ("", set())
    explained, drawn = _explained(run)
    body = "".join(
        [
            _header(run),
            _data(run),
            _training(run),
            _headline(run),
            _findings(run),
            plots,
            _retrieval_examples(run),
            explained,
            _prompts(run),
            _vocabulary(run),
            _other_plots(run, shown | drawn) if run.metrics else "",
            _all_metrics(run),
        ]
    )
    sections = re.findall(r"<(?:h2|details) id='([^']+)'", body)
    names = {"all-metrics": "all metrics"}
    nav = " · ".join(f'<a href="#{s}">{names.get(s, s.replace("-", " "))}</a>' for s in sections)
    body = body.replace("</table>", f"</table><nav class='muted'>{nav}</nav>", 1) if nav else body
    title = esc(f"domainclip run report: {run.root.name}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body><main>{body}</main><script>{SORT_SCRIPT}</script></body></html>\n"
    )
