"""The model card of a candidate: what it was trained on, how it scored, what the gate decided.

Built from the promotion payload alone (a pure function), as Markdown for the log and the
registry, and as a self-contained HTML page (inline SVG plots, no scripts) for people.
"""

from __future__ import annotations

import html

THRESHOLD_TITLE = "At the threshold that maximised F1 on validation (test split)"


def _f(v, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and v is not None else "-"


def _iv(iv, signed: bool = False) -> str:
    if not iv:
        return "-"
    return f"[{iv[0]:+.4f}, {iv[1]:+.4f}]" if signed else f"[{iv[0]:.4f}, {iv[1]:.4f}]"


def _rows(card: dict) -> tuple[list[str], list[list[str]]]:
    """The metric table: one row per task (and per conditional AUC)."""
    head = ["task", "metric", "candidate", "95% interval", "champion", "gain", "gain interval", "oracle",
            "vs single-task", "verdict"]
    verdicts = {v["task"]: v for v in card["decision"].get("tasks", [])}
    comparison = card.get("comparison") or {}
    baseline = (card.get("mtl_gain") or {}).get("tasks", {})
    rows = []
    for task, e in card["metrics"].items():
        metric = e.get("gate_metric") or ("auc" if e["type"] == "binary" else "rmse")  # a forecast's: wape, pinball
        comp = comparison.get(task, {})
        v = verdicts.get(task, {})
        rows.append([task, metric.upper(), _f(e.get(metric)), _iv(e.get("auc_interval")) if metric == "auc" else "-",
                     _f(comp.get("champion")), _f(comp.get("gain")) if comp.get("gain") is not None else "-",
                     _iv(comp.get("gain_interval"), True), _f(e.get("oracle_auc")),
                     f"{baseline[task]['gain']:+.4f} {_iv(baseline[task].get('gain_interval'), True)}"
                     if baseline.get(task, {}).get("gain") is not None else "-",
                     ("PASS" if v.get("passed") else "FAIL") if v else "-"])
        for key in e:
            if key.startswith("auc_given_"):
                rows.append([f"{task} given {key[len('auc_given_'):]}", "AUC", _f(e[key]), *["-"] * 7])
    return head, rows


def _detail_rows(card: dict) -> tuple[list[str], list[list[str]]]:
    head = ["task", "PR-AUC", "logloss", "ECE", "GAUC", "MAE", "rows"]
    return head, [[task, _f(e.get("pr_auc")), _f(e.get("logloss")), _f(e.get("ece")), _f(e.get("gauc")),
                   _f(e.get("mae")), str(e.get("rows", "-"))] for task, e in card["metrics"].items()]


def _threshold_rows(card: dict) -> tuple[list[str], list[list[str]]]:
    """Per binary task: the metrics at the threshold that maximised F1 on validation, and the
    single-task baseline's F1 at its own (when trained)."""
    head = ["task", "threshold", "precision", "recall", "F1", "accuracy", "single-task F1"]
    baseline = (card.get("mtl_gain") or {}).get("tasks", {})
    return head, [[task, _f(e.get("threshold")), _f(e.get("precision")), _f(e.get("recall")), _f(e.get("f1")),
                   _f(e.get("accuracy")), _f((baseline.get(task, {}).get("baseline_at_threshold") or {}).get("f1"))]
                  for task, e in card["metrics"].items() if e["type"] == "binary"]


def _slice_rows(card: dict) -> tuple[list[str], list[list[str]]]:
    head = ["task", "slice", "rows", "AUC / RMSE", "champion", "gain", "gain interval"]
    comparison = card.get("comparison") or {}
    rows = []
    for task, e in card["metrics"].items():
        metric = "auc" if e["type"] == "binary" else "rmse"
        for col, values in e.get("slices", {}).items():
            for value, se in values.items():
                comp = comparison.get(task, {}).get("slices", {}).get(col, {}).get(value, {})
                rows.append([task, f"{col}={value}", str(se.get("rows", "-")), _f(se.get(metric)),
                             _f(comp.get("champion")), _f(comp.get("gain")) if comp.get("gain") is not None else "-",
                             _iv(comp.get("gain_interval"), True)])
    return head, rows


def _gain_line(card: dict) -> str:
    gain = card.get("mtl_gain")
    if not gain:
        return "Single-task baselines: not trained (single_task is not in evaluation.baselines)."
    dm = gain.get("delta_m")
    negative = ", ".join(f"{n['task']} ({n['gain']:+.4f}{', beyond noise' if n['beyond_noise'] else ''})"
                         for n in gain.get("negative_transfer", [])) or "none"
    return (f"Multi-task gain over the single-task baselines: Δm {dm:+.2%}" if dm is not None else "Δm undefined") + \
        f"; negative transfer: {negative}."


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _reasons(decision: dict) -> list[str]:
    out = [f"{'PASS' if t['passed'] else 'FAIL'} {t['task']}: {t['reason']}" for t in decision.get("tasks", [])]
    out += [f"{'PASS' if s['passed'] else 'FAIL'} {s['task']} on {s['slice']}: {s['reason']}"
            for s in decision.get("slices", []) if not s["passed"]]
    if decision.get("improvement"):
        imp = decision["improvement"]
        out.append(f"{'PASS' if imp['passed'] else 'FAIL'} improvement: {imp['reason']}")
    if decision.get("load_check"):
        lc = decision["load_check"]
        out.append(f"{'PASS' if lc['passed'] else 'FAIL'} load check: {lc['reason']}")
    return out


def markdown(card: dict) -> str:
    """``card``: model_name, version, run_id, lineage (tags), metrics (evaluate's per-task
    result), comparison (or None), decision (the promotion payload)."""
    lineage = card.get("lineage", {})
    data_lines = [f"- {k.removeprefix('mtl.')}: `{v}`" for k, v in sorted(lineage.items())]
    parts = [
        f"# Model card: {card['model_name']} version {card.get('version', '-')}",
        f"MLflow run `{card.get('run_id', '-')}`; champion at evaluation: "
        f"{card['decision'].get('champion_version') or 'none (first model)'}.",
        "## Decision",
        f"**{card['decision']['summary']}**",
        "\n".join(f"- {r}" for r in _reasons(card["decision"])),
        "## Data and lineage",
        "\n".join(data_lines) or "-",
        "## Metrics (test split; gain = candidate better than champion, paired bootstrap interval)",
        _md_table(*_rows(card)),
        _gain_line(card),
        _md_table(*_detail_rows(card)),
    ]
    threshold_head, threshold_rows = _threshold_rows(card)
    if threshold_rows:
        parts += [f"## {THRESHOLD_TITLE}", _md_table(threshold_head, threshold_rows)]
    slice_head, slice_rows = _slice_rows(card)
    if slice_rows:
        parts += ["## Slices", _md_table(slice_head, slice_rows)]
    return "\n\n".join(parts) + "\n"


CANDIDATE, CHAMPION = "#1f6feb", "#d4760a"


def _svg_plot(series: list[tuple[str, list[dict], str]], x: str, y: str, labels: tuple[str, str], title: str) -> str:
    """A square plot of ``series`` (legend text, points, colour) on [0, 1] x [0, 1]: axes with
    ticks at 0, 0.5 and 1, their labels, the diagonal (chance for ROC, perfect calibration for
    reliability) and a legend."""
    size, left, bottom, top = 300, 46, 40, 12
    inner = size - left - top

    def xy(px, py):
        return f"{left + px * inner:.1f},{top + (1 - py) * inner:.1f}"

    parts = [f'<rect x="{left}" y="{top}" width="{inner}" height="{inner}" fill="none" stroke="#888"/>',
             f'<polyline points="{xy(0, 0)} {xy(1, 1)}" stroke="#bbb" stroke-dasharray="4" fill="none"/>']
    for t in (0.0, 0.5, 1.0):
        tx, ty = xy(t, 0).split(","), xy(0, t).split(",")
        parts.append(f'<text x="{tx[0]}" y="{top + inner + 14}" font-size="10" text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{left - 5}" y="{float(ty[1]) + 3:.1f}" font-size="10" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{left + inner / 2}" y="{size - 6}" font-size="11" text-anchor="middle">'
                 f'{html.escape(labels[0])}</text>')
    parts.append(f'<text x="12" y="{top + inner / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + inner / 2})">{html.escape(labels[1])}</text>')
    for i, (legend, points, colour) in enumerate(series):
        line = " ".join(xy(p[x], p[y]) for p in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
        ly = top + inner - 10 - 14 * (len(series) - 1 - i)
        parts.append(f'<line x1="{left + inner - 128}" y1="{ly - 3}" x2="{left + inner - 114}" y2="{ly - 3}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{left + inner - 110}" y="{ly}" '
                     f'font-size="10">{html.escape(legend)}</text>')
    return (f'<figure><svg width="{size}" height="{size}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}'
            f'</svg><figcaption>{html.escape(title)}</figcaption></figure>')


def _plots(card: dict, roc: dict, reliability: dict) -> list[str]:
    """Per binary task, its ROC and reliability curves, the champion's beside the candidate's."""
    comparison, out = card.get("comparison") or {}, []
    for task, points in roc.items():
        comp, auc = comparison.get(task) or {}, (card["metrics"].get(task) or {}).get("auc")
        series = [(f"candidate (AUC {_f(auc, 3)})", points, CANDIDATE)]
        if comp.get("champion_roc"):
            series.append((f"champion (AUC {_f(comp.get('champion'), 3)})", comp["champion_roc"], CHAMPION))
        out.append(_svg_plot(series, "fpr", "tpr", ("false positive rate", "true positive rate"), f"ROC: {task}"))
    for task, points in reliability.items():
        comp, ece = comparison.get(task) or {}, (card["metrics"].get(task) or {}).get("ece")
        series = [(f"candidate (ECE {_f(ece, 3)})", points, CANDIDATE)]
        if comp.get("champion_reliability"):
            series.append(("champion", comp["champion_reliability"], CHAMPION))
        out.append(_svg_plot(series, "mean_prediction", "positive_rate", ("mean prediction", "observed rate"),
                             f"reliability: {task}"))
    return out


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def to_html(card: dict, roc: dict[str, list[dict]] | None = None, reliability: dict[str, list[dict]] | None = None) -> str:
    decision = card["decision"]
    colour = "#1a7f37" if decision.get("promote") else "#cf222e"
    plots = _plots(card, {t: p for t, p in (roc or {}).items() if p},
                   {t: p for t, p in (reliability or {}).items() if p})
    lineage = card.get("lineage", {})
    slice_head, slice_rows = _slice_rows(card)
    threshold_head, threshold_rows = _threshold_rows(card)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(card['model_name'])} v{html.escape(str(card.get('version', '-')))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:0 1em 1em 0}}</style></head><body>
<h1>Model card: {html.escape(card['model_name'])} version {html.escape(str(card.get('version', '-')))}</h1>
<p>MLflow run <code>{html.escape(str(card.get('run_id', '-')))}</code>; champion at evaluation:
{html.escape(str(decision.get('champion_version') or 'none (first model)'))}</p>
<h2>Decision</h2><p style="color:{colour};font-weight:bold">{html.escape(decision['summary'])}</p>
<ul>{''.join(f'<li>{html.escape(r)}</li>' for r in _reasons(decision))}</ul>
<h2>Data and lineage</h2><ul>{''.join(f'<li>{html.escape(k)}: <code>{html.escape(str(v))}</code></li>' for k, v in sorted(lineage.items()))}</ul>
<h2>Metrics</h2>{_html_table(*_rows(card))}<p>{html.escape(_gain_line(card))}</p>{_html_table(*_detail_rows(card))}
{(f'<h2>{html.escape(THRESHOLD_TITLE)}</h2>' + _html_table(threshold_head, threshold_rows)) if threshold_rows else ''}
{('<h2>Slices</h2>' + _html_table(slice_head, slice_rows)) if slice_rows else ''}
<h2>Plots</h2>{''.join(plots)}
</body></html>
"""
