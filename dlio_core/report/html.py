"""``dl-driver report OUTPUT_DIR``: one self-contained ``report.html`` per output folder.

The page carries its figures as ``data:`` PNGs and its style inline: no script, font, stylesheet or
image is fetched, so it opens offline and can be mailed or attached to a ticket as it is. It works on
our folders and on DLIO's (``summary.json``, ``{rank}_output.json``, ``{rank}_per_epoch_stats.json``);
a figure DLIO's files cannot give is left out with a note saying so.

Figures (ids in the page): ``fig-timeline``, ``fig-latency-cdf``, ``fig-epochs``, ``fig-bandwidth``,
``fig-rank-spread``, ``fig-checkpoints`` (see :mod:`.figures`, :mod:`.figures_runs`).

Example:
    >>> import tempfile, json, os
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "summary.json"), "w").write(json.dumps({"metric": {}, "num_accelerators": 1}))
    >>> page = render_page(RunData.load(d), figures=[])
    >>> page.startswith("<!DOCTYPE html>") and "http" not in page.split("<body>")[0]
    True
"""

from __future__ import annotations

import base64
import html
import os
from typing import Any, Callable, Sequence

from .figures import Figure, latency_cdf_figure, rank_spread_figure, require_matplotlib, timeline_figure, bandwidth_figure
from .figures_runs import checkpoint_figure, epochs_figure
from .rundata import RunData, ReportInputError

__all__ = ["write_report", "render_page", "draw_figures", "FIGURES", "STYLE", "figure_html", "table_html"]

# In page order.
FIGURES: tuple[Callable[[RunData], Figure], ...] = (timeline_figure, latency_cdf_figure, epochs_figure,
                                                    bandwidth_figure, rank_spread_figure, checkpoint_figure)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1000px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } .note { color: #8a5a00; font-size: 0.85em; }
.omitted { border-left: 3px solid #e0b000; padding: 0.3em 0.8em; background: #fffbea; margin: 1em 0; }
.fail { color: #b00020; font-weight: bold; } .ok { color: #1b7f1b; font-weight: bold; }
code, pre { font-size: 0.85em; background: #f6f6f6; }
"""


def table_html(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """A small HTML table; numbers right-aligned and rounded to 4 significant digits."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f'<td class="num">{v:,.4g}</td>'
        if isinstance(v, int) and not isinstance(v, bool):
            return f'<td class="num">{v:,}</td>'
        return f"<td>{html.escape('' if v is None else str(v))}</td>"

    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def figure_html(fig: Figure) -> str:
    """A drawn figure as ``<figure>`` with an inline PNG, or a note where it could not be drawn."""
    title = html.escape(fig.title)
    if fig.png is None:
        return (f'<section class="omitted" id="{fig.id}-omitted"><h2>{title}</h2>'
                f'<p>Not shown: {html.escape(fig.note)}.</p></section>')
    data = base64.b64encode(fig.png).decode("ascii")
    note = f'<p class="note">{html.escape(fig.note)}.</p>' if fig.note else ""
    return (f'<section><h2>{title}</h2><figure id="{fig.id}"><img alt="{title}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>{note}</section>")


def _headline_rows(run: RunData) -> list[tuple[str, Any]]:
    m, s, r = run.metric, run.summary, run.report or {}
    status = (s.get("run_status") or r.get("run_status") or {}).get("status")
    rows: list[tuple[str, Any]] = [
        ("written by", "dl-driver" if run.producer == "dl-driver" else "DLIO (its own files)"),
        ("workload", (r.get("provenance") or {}).get("workload") or (run.config.get("model") or {}).get("name")),
        ("data loader", r.get("data_loader") or (run.config.get("reader") or {}).get("data_loader")),
        ("format", (run.config.get("dataset") or {}).get("format")),
        ("storage", (r.get("provenance") or {}).get("storage_uri") or (run.config.get("dataset") or {}).get("data_folder")),
        ("ranks / hosts", f"{s.get('num_accelerators', run.num_ranks)} / {s.get('num_hosts', '?')}"),
        ("start - end", f"{s.get('start', '?')} - {s.get('end', '?')}"),
        ("run status", status or "complete"),
    ]
    threshold = run.au_threshold_percentage
    for label, key in (("training AU % (mean)", "train_au_mean_percentage"),
                       ("training samples/s (mean)", "train_throughput_mean_samples_per_second"),
                       ("training MiB/s (mean)", "train_io_mean_MB_per_second"),
                       ("eval AU % (mean)", "eval_au_mean_percentage"),
                       ("eval samples/s (mean)", "eval_throughput_mean_samples_per_second"),
                       ("checkpoint save GiB/s (mean)", "save_checkpoint_io_mean_GB_per_second"),
                       ("checkpoint load GiB/s (mean)", "load_checkpoint_io_mean_GB_per_second"),
                       ("checkpoint size GiB", "checkpoint_size_GB")):
        if key in m:
            rows.append((label, m[key]))
    if "train_au_mean_percentage" in m:
        rows.append(("AU threshold %", threshold if threshold is not None else "unknown"))
        rows.append(("train_au_meet_expectation", m.get("train_au_meet_expectation")))
    return rows


def _stage_table(run: RunData) -> str:
    stages = ((run.report or {}).get("train") or {}).get("stages") or {}
    rows = []
    for name, st in stages.items():
        if st.get("count"):
            rows.append((name, st["count"], *(st[k] * 1e3 for k in ("mean_s", "p50_s", "p95_s", "p99_s", "max_s"))))
    if not rows:
        return ""
    return "<h2>Stages per training step (ms)</h2>" + table_html(rows, ("stage", "steps", "mean", "p50", "p95",
                                                                         "p99", "max"))


def draw_figures(run: RunData) -> list[Figure]:
    """Every figure of the page for ``run`` (each drawn, or with the note saying why not)."""
    require_matplotlib()
    return [make(run) for make in FIGURES]


def render_page(run: RunData, figures: Sequence[Figure]) -> str:
    """The whole HTML page for ``run`` with ``figures``."""
    title = f"dl-driver report: {run.name}"
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p><code>{html.escape(os.path.abspath(run.folder))}</code></p>", "<h2>Summary</h2>",
             table_html(_headline_rows(run))]
    meet = run.metric.get("train_au_meet_expectation")
    if meet is not None:
        css = "ok" if meet == "success" else "fail"
        parts.append(f'<p>Training AU against the threshold: <span class="{css}">{html.escape(str(meet))}</span></p>')
    parts.append(_stage_table(run))
    parts += [figure_html(f) for f in figures]
    warnings = (run.report or {}).get("warnings") or []
    if warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings) + "</ul>")
    if run.overrides:
        parts.append("<h2>Overrides</h2><pre>" + html.escape("\n".join(map(str, run.overrides))) + "</pre>")
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def write_report(folder: str, output: str | None = None) -> tuple[str, list[Figure]]:
    """Write ``report.html`` for the output folder ``folder`` (in it, or at ``output``); the path and figures."""
    run = RunData.load(folder)
    figures = draw_figures(run)
    path = output or os.path.join(folder, "report.html")
    try:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(render_page(run, figures))
        os.replace(tmp, path)
    except OSError as exc:
        raise ReportInputError(f"cannot write {path} ({exc.strerror or exc}); name another file with --output") from None
    return path, figures
