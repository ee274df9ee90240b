"""The report as Markdown (report.md, figures linked) and as one self-contained HTML file (report.html:
figures embedded, inline CSS, no scripts, no network), both from the same collected runs."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from dlx.claims import category, count, fmt, ours, summary_line
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
.inconclusive{background:#eef0f7;color:#3b4470}.built-in{background:#f0e9f7;color:#5b2a86}
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


def claim_text(c: dict) -> str:
    """The claim, marked when it is dlx's own check rather than the paper's."""
    return ("dlx's: " if c.get("source") == "dlx" else "") + str(c["claim"])


def control_text(c: dict) -> str:
    """The control's verdict ('-' where no control ran), with its interval."""
    v = c.get("control")
    if not v:
        return "-"
    ci = c.get("control_ci")
    return v + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "") + \
        (f" ({c['control_why']})" if c.get("control_why") else "")


def verdict_cell(c: dict) -> str:
    """What the claim counts as (built in when its control holds too), and why where there is a reason."""
    return category(c) + (f" ({c['why']})" if c.get("why") else "")


def heading(runs) -> str:
    n = count([c for _, c in claim_rows(runs)])
    return f"{len(runs)} paper{'s' if len(runs) != 1 else ''}, {summary_line(n)}."


HEAD = ("paper", "claim", "ours (estimate [95% interval], n)", "paper's", "rule: how it could fail",
        "control", "verdict")


# ---- Markdown -----------------------------------------------------------------------------------------
def markdown(runs, env: dict, out_dir: Path) -> str:
    lines = ["# dlx reproductions: claim by claim", "", heading(runs),
             "A comparison holds when its whole 95% interval clears the rule's line, fails when the whole "
             "interval lies on the wrong side, and is inconclusive when it straddles the line; a claim that "
             "also holds on its negative control (data without the paper's premise) is built in and not "
             "counted as a hold.", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r, c in claim_rows(runs):
        cells = (r.name, claim_text(c), ours(c), c.get("paper", ""), c["rule"], control_text(c),
                 verdict_cell(c))
        lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
    for r in runs:
        rel = os.path.relpath(r.dir, out_dir)
        lines += ["", f"## {r.name}: {r.title}", "",
                  f"Run directory: [{rel}]({rel}) — status {r.status}, "
                  f"wall time {_minutes(r.summary.get('wall_s'))}.", ""]
        note = (r.summary.get("control") or {}).get("note")
        if note:
            lines += [f"Negative control: {note}.", ""]
        for c in r.claims:
            lines.append(f"- **{category(c)}** — {claim_text(c)}: {ours(c)} (rule: {c['rule']}; "
                         f"control: {control_text(c)})")
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
    widths = (8, 22, 18, 16, 18, 8, 10)
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>dlx reproductions</title><style>{CSS}</style></head><body>",
             "<h1>dlx reproductions: claim by claim</h1>",
             f"<p class='meta'>{e(heading(runs))} A comparison holds when its whole 95% interval clears the "
             "rule's line, fails when it lies on the wrong side, and is inconclusive when it straddles; a "
             "claim that also holds on its negative control is built in and not counted as a hold.</p>",
             "<table id='claims'><colgroup>" + "".join(f"<col style='width:{w}%'>" for w in widths) +
             "</colgroup><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEAD) + "</tr></thead><tbody>"]
    for r, c in claim_rows(runs):
        why = f"<br><small>{e(c['why'])}</small>" if c.get("why") else ""
        cat = category(c)
        parts.append(f"<tr class='claim'><td><a href='#{e(r.name)}'>{e(r.name)}</a></td>"
                     f"<td>{e(claim_text(c))}</td><td>{e(ours(c))}</td>"
                     f"<td>{e(c.get('paper', ''))}</td><td>{e(c['rule'])}</td>"
                     f"<td>{e(control_text(c))}</td>"
                     f"<td class='verdict {verdict_class(cat)}'>{e(cat)}{why}</td></tr>")
    parts.append("</tbody></table>")
    for r in runs:
        link = Path(os.path.relpath(r.dir, out_dir)).as_posix()
        parts += [f"<h2 id='{e(r.name)}'>{e(r.name)}: {e(r.title)}</h2>",
                  f"<p class='meta'>Run directory: <a href='{e(link)}'>{e(link)}</a> — status {e(r.status)}, "
                  f"wall time {e(_minutes(r.summary.get('wall_s')))}</p><ul>"]
        note = (r.summary.get("control") or {}).get("note")
        if note:
            parts.append(f"<li>Negative control: {e(note)}</li>")
        for c in r.claims:
            cat = category(c)
            parts.append(f"<li><span class='verdict {verdict_class(cat)}'>{e(cat)}</span> "
                         f"{e(claim_text(c))}: {e(ours(c))} "
                         f"<small>(rule: {e(c['rule'])}; control: {e(control_text(c))})</small></li>")
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
