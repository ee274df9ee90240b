"""The report as Markdown (report.md, figures linked) and as one self-contained HTML file (report.html:
figures embedded, inline CSS, no scripts, no network), both from the same collected runs."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from dlx.experiments.claims import count, fmt
from dlx.tables import fmt_metric, fmt_number, is_percent

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.88em;width:100%}#claims{table-layout:fixed}
#claims td{overflow-wrap:anywhere}
th,td{border:1px solid #d6d6d6;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-weight:600}small{font-weight:400}.holds{background:#e3f5e6;color:#11632a}
.fails{background:#fde7e7;color:#8e1515}.not-shown{background:#fff4d6;color:#7a5800}
figure{margin:1em 0;display:inline-block;max-width:100%}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8em;color:#555}.meta{color:#555;font-size:.9em}
@media print{body{max-width:none}h2{page-break-before:always}figure{page-break-inside:avoid}}
"""


def verdict_class(v: str) -> str:
    return str(v).replace(" ", "-")


def claim_rows(runs) -> list[tuple]:
    return [(r, c) for r in runs for c in r.claims]


def cell(col: str, value) -> str:
    return fmt_metric(col, value) if is_percent(col) else fmt_number(value)


# ---- Markdown -----------------------------------------------------------------------------------------
def markdown(runs, env: dict, out_dir: Path) -> str:
    n = count([c for _, c in claim_rows(runs)])
    lines = ["# dlx reproductions: claim by claim", "",
             f"{len(runs)} papers, {sum(n.values())} claims: **{n['holds']} hold**, {n['fails']} fail, "
             f"{n['not shown']} not shown.", "", "| paper | claim | ours | paper's | verdict |",
             "|---|---|---|---|---|"]
    for r, c in claim_rows(runs):
        verdict = c["verdict"] + (f" ({c['why']})" if c.get("why") else "")
        cells = (r.name, c["claim"], fmt(c.get("measured")), c.get("paper", ""), verdict)
        lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
    for r in runs:
        rel = os.path.relpath(r.dir, out_dir)
        lines += ["", f"## {r.name}: {r.title}", "",
                  f"Run directory: [{rel}]({rel}) — status {r.status}, "
                  f"wall time {_minutes(r.summary.get('wall_s'))}.", ""]
        for c in r.claims:
            lines.append(f"- **{c['verdict']}** — {c['claim']}: {fmt(c.get('measured'))} (rule: {c['rule']})")
        if r.table is not None:
            cols = list(r.table.columns)
            lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(cell(k, v) for k, v in zip(cols, row, strict=True)) + " |"
                      for row in r.table.itertuples(index=False)]
        for fig in r.figures:
            lines += ["", f"![{fig.stem}]({os.path.relpath(fig, out_dir)})"]
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in env["env"].items()]
    lines += [f"- wall time, {k}: {_minutes(v)}" for k, v in env["wall_s"].items()]
    return "\n".join(lines) + "\n"


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _minutes(s) -> str:
    if not isinstance(s, (int, float)):
        return "-"
    return f"{int(s // 60)} min {s % 60:.0f} s" if s >= 60 else f"{s:.1f} s"


# ---- HTML ---------------------------------------------------------------------------------------------
def page(runs, env: dict, out_dir: Path) -> str:
    e = html.escape
    n = count([c for _, c in claim_rows(runs)])
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>dlx reproductions</title><style>{CSS}</style></head><body>",
             "<h1>dlx reproductions: claim by claim</h1>",
             f"<p class='meta'>{len(runs)} papers, {sum(n.values())} claims: <b>{n['holds']} hold</b>, "
             f"{n['fails']} fail, {n['not shown']} not shown.</p>",
             "<table id='claims'><colgroup><col style='width:10%'><col style='width:30%'>"
             "<col style='width:22%'><col style='width:24%'><col style='width:14%'></colgroup>"
             "<thead><tr><th>paper</th><th>claim</th><th>ours</th><th>paper's</th>"
             "<th>verdict</th></tr></thead><tbody>"]
    for r, c in claim_rows(runs):
        why = f"<br><small>{e(c['why'])}</small>" if c.get("why") else ""
        parts.append(f"<tr class='claim'><td><a href='#{e(r.name)}'>{e(r.name)}</a></td>"
                     f"<td>{e(c['claim'])}</td><td>{e(fmt(c.get('measured')))}</td>"
                     f"<td>{e(c.get('paper', ''))}</td>"
                     f"<td class='verdict {verdict_class(c['verdict'])}'>{e(c['verdict'])}{why}</td></tr>")
    parts.append("</tbody></table>")
    for r in runs:
        link = Path(os.path.relpath(r.dir, out_dir)).as_posix()
        parts += [f"<h2 id='{e(r.name)}'>{e(r.name)}: {e(r.title)}</h2>",
                  f"<p class='meta'>Run directory: <a href='{e(link)}'>{e(link)}</a> — status {e(r.status)}, "
                  f"wall time {e(_minutes(r.summary.get('wall_s')))}</p><ul>"]
        for c in r.claims:
            parts.append(f"<li><span class='verdict {verdict_class(c['verdict'])}'>{e(c['verdict'])}</span> "
                         f"{e(c['claim'])}: {e(fmt(c.get('measured')))} "
                         f"<small>(rule: {e(c['rule'])})</small></li>")
        parts.append("</ul>")
        if r.table is not None:
            cols = list(r.table.columns)
            head = "".join(f"<th>{e(str(k))}</th>" for k in cols)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
            for row in r.table.itertuples(index=False):
                parts.append("<tr>" + "".join(f"<td class='num'>{e(cell(k, v))}</td>"
                                              for k, v in zip(cols, row, strict=True)) + "</tr>")
            parts.append("</tbody></table>")
        for fig in r.figures:
            data = base64.b64encode(fig.read_bytes()).decode()
            parts.append(f"<figure><img alt='{e(fig.stem)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{e(fig.name)}</figcaption></figure>")
    parts.append("<h2>Environment</h2><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in env["env"].items()]
    parts += [f"<tr><th>wall time, {e(k)}</th><td>{e(_minutes(v))}</td></tr>"
              for k, v in env["wall_s"].items()]
    parts.append("</table></body></html>")
    return "\n".join(parts)
