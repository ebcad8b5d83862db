"""Results of momu-eval as text: console tables (rich renderables, which the CLI prints so
that they fit its terminal), notes on what a result leaves out, and the paper-style markdown
tables of `momu-eval all` (docs/metrics.md)."""

from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table

from momu_models.evaluate.files import listing
from momu_models.evaluate.metrics.beat_variants import BAS_METRICS, primary_metric
from momu_models.evaluate.metrics.beats import DEFAULT_BIN_S
from momu_models.evaluate.metrics.fad import DEFAULT_EMBEDDER


def percent(v) -> str:
    """A beat score for the console: one decimal, "n/a" for NaN (the SD of one pair)."""
    return "n/a" if isinstance(v, float) and not math.isfinite(v) else f"{v:.1f}"


def sync_cell(v) -> str:
    return "n/a" if isinstance(v, float) and not math.isfinite(v) else f"{v:.3f}"


BY_METRIC_COLUMNS = ("BCS", "CSD", "BHS", "HSD", "F1", "BAS", "BAS_SD", "n")


def metric_cells(summary: dict) -> list[str]:
    """A metric summary (beat_variants.summarise) as cells of BY_METRIC_COLUMNS: percent for
    BCS ... F1, three decimals for BAS, "–" where the metric has no such figure."""
    out = []
    for c in BY_METRIC_COLUMNS:
        v = summary.get(c)
        if v is None:
            out.append("–")
        elif c == "n":
            out.append(str(v))
        else:
            out.append(sync_cell(v) if c.startswith("BAS") else percent(v))
    return out


def metric_table(by_metric: dict, title: str) -> Table:
    """Every beat metric of a result side by side: one row per metric."""
    t = Table(title=title)
    t.add_column("metric")
    for c in BY_METRIC_COLUMNS:
        t.add_column(c.replace("_", " "), justify="right")
    for m in by_metric.values():
        t.add_row(escape(m["label"]), *metric_cells(m))
    return t


# ---- momu-eval beats / plot / fad / motion / diversity ----------------------------------


def _other_metric_cells(row: dict, others: list[str]) -> list[str]:
    """A pair's figures of the metrics besides the primary: BCS and BHS, or BAS."""
    cells = []
    for m in others:
        v = row["metrics"][m]
        cells += [sync_cell(v["BAS"])] if "BAS" in v else [percent(v["BCS"]), percent(v["BHS"])]
    return cells


def beat_tables(res: dict, per_pair: bool = False) -> list[Table]:
    """The tables of an evaluate_beats result: one row per pair (if per_pair), then the set's
    BCS CSD BHS HSD F1 n of the primary metric (and sync, sync SD when it was computed), then,
    when other beat metrics were asked for, every metric side by side (metric_table)."""
    out = []
    sync = "sync" in res
    matching = "BCS" in res  # loris or tolerance was asked for: the paper-style table
    metrics = res.get("metrics") or []
    others = [m for m in metrics if not (matching and m == primary_metric(metrics))]
    if per_pair:
        t = Table(title="pairs")
        base = ["gen", "ref", "matched", "BCS", "BHS", "F1"] if matching else []
        cols = ["stem", "dur (s)", *base] + (["sync"] if sync else [])
        for c in cols:
            t.add_column(c, justify="left" if c == "stem" else "right")
        for r in res["pairs"]:
            cells = [str(r["n_generated"]), str(r["n_reference"]), str(r["n_matched"])] if matching else []
            cells += [percent(r[c]) for c in ("BCS", "BHS", "F1")] if matching else []
            t.add_row(r["stem"], f"{r['duration_s']:.2f}", *cells, *([sync_cell(r["sync"])] if sync else []))
        out.append(t)
        if others:  # the other metrics' figures per pair, in a table of their own (terminal width)
            t = Table(title="pairs, other beat metrics (BCS BHS percent, BAS 0-1)")
            t.add_column("stem")
            for m in others:
                for c in [m] if m in BAS_METRICS else [f"{m} BCS", f"{m} BHS"]:
                    t.add_column(c, justify="right")
            for r in res["pairs"]:
                t.add_row(r["stem"], *_other_metric_cells(r, others))
            out.append(t)
    if matching:
        t = Table(title=f"Beat alignment ({res['kind']}, {res['method']}), percent")
        for c in ("BCS", "CSD", "BHS", "HSD", "F1", "n") + (("sync", "sync SD") if sync else ()):
            t.add_column(c, justify="right")
        t.add_row(
            *(percent(res[c]) for c in ("BCS", "CSD", "BHS", "HSD", "F1")),
            str(res["n"]),
            *((sync_cell(res["sync"]), sync_cell(res["sync_sd"])) if sync else ()),
        )
        out.append(t)
    elif sync:
        t = Table(title=f"Envelope sync ({res['kind']})")
        for c in ("sync", "sync SD", "n"):
            t.add_column(c, justify="right")
        t.add_row(sync_cell(res["sync"]), sync_cell(res["sync_sd"]), str(res["n"]))
        out.append(t)
    if others:
        out.append(
            metric_table(res["by_metric"], f"Beat metrics side by side ({res['kind']}; BCS..F1 percent, BAS 0-1)")
        )
    return out


def beat_notes(res: dict) -> list[str]:
    """What an evaluate_beats result leaves out or should be read with."""
    notes = []
    if res["unused_reference"]:
        notes.append(f"{len(res['unused_reference'])} reference file(s) without a generated counterpart were ignored")
    longer = [p["stem"] for p in res["pairs"] if p["duration_s"] > p["reference_duration_s"] + DEFAULT_BIN_S]
    if longer:
        # Bins past the reference's end can hold no reference beat, so they cost BCS.
        notes.append(f"generated outlasts its reference by more than 1 s: {listing(longer)}")
    return notes


def fad_table(res: dict) -> Table:
    """The table of a fad_from_files result."""
    t = Table(title="Fréchet Audio Distance")
    for c in ("metric", "value", "generated files / windows", "reference files / windows"):
        t.add_column(c, justify="right")
    # escape: rich would read "[logmel-stats]" as a style tag and drop the embedder name.
    t.add_row(
        escape(res["metric"]),
        f"{res['value']:.4f}",
        f"{res['n_generated_files']} / {res['n_generated_windows']}",
        f"{res['n_reference_files']} / {res['n_reference_windows']}",
    )
    return t


def value_table(title: str, rows: list[tuple[str, object]]) -> Table:
    """A two-column table (metric, value): floats with 4 decimals, None as n/a."""
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(escape(k), "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
    return t


def motion_table(res: dict) -> Table:
    """The table of an evaluate_motion result."""
    return value_table(
        f"Motion metrics ({res['classifier_label']} classifier, {res['dim']}-d features)",
        [
            ("FID", res["FID"]),
            ("Mean KLD", res["Mean KLD"]),
            ("Diversity (inter)", res["Diversity"]),
            ("intra-diversity", res["intra_diversity"]),
            ("generated", res["n_generated"]),
            ("conditions", res["n_conditions"]),
            ("reference", res.get("n_reference", "n/a")),
        ],
    )


def diversity_table(res: dict) -> Table:
    """The table of an evaluate_diversity result."""
    return value_table(
        res["metric"],
        [
            ("inter-diversity", res["inter_diversity"]),
            ("intra-diversity", res["intra_diversity"]),
            ("samples", res["n"]),
            ("conditions", res["n_conditions"]),
            ("pairs", res["n_pairs"]),
        ],
    )


# ---- momu-eval all: markdown ------------------------------------------------------------

ARROWS = {"BCS": "BCS↑", "BHS": "BHS↑", "F1": "F1↑", "FID": "FID↓", "Mean KLD": "Mean KLD↓", "Diversity": "Diversity↑"}
BEAT_COLUMNS = ("BCS", "CSD", "BHS", "HSD", "F1")


def column_head(col: str) -> str:
    """A column's heading with the arrow saying which way is better."""
    if col.startswith("FAD["):
        return col + "↓"
    if col.startswith("Diversity["):
        return col + "↑"
    return ARROWS.get(col, col)


def markdown_cell(v, col: str = "") -> str:
    """A value in a markdown table: "–" for none."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if abs(v) < 0.005:
        v = 0.0  # a Fréchet distance of identical sets comes out as -1e-9, not "-0.00"
    # Beat scores in percent with one decimal, as the paper; distances keep two below 10.
    return f"{v:.1f}" if col in BEAT_COLUMNS or abs(v) >= 10 else f"{v:.2f}"


def markdown_table(title: str, rows: list[tuple[str, dict]], cols: list[str]) -> list[str]:
    """Lines of a "### title" markdown table: one row per (method name, {column: value})."""
    out = [
        f"### {title}",
        "",
        "| Method | " + " | ".join(column_head(c) for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for name, vals in rows:
        out.append(f"| {name} | " + " | ".join(markdown_cell(vals.get(c), c) for c in cols) + " |")
    return out + [""]


def markdown_metric_table(title: str, ms: list[dict], direction: str) -> list[str]:
    """Lines of a "### title" markdown table of every beat metric side by side: one row per
    (method, metric) of the methods' beats_by_metric[direction]; BCS ... F1 in percent, BAS
    0..1 with three decimals, "–" where a metric has no such figure."""
    cols = BY_METRIC_COLUMNS
    out = [
        f"### {title}",
        "",
        "| Method | metric | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for m in ms:
        for summary in m.get("beats_by_metric", {}).get(direction, {}).values():
            out.append(f"| {m['name']} | {summary['label']} | " + " | ".join(metric_cells(summary)) + " |")
    return out + [""]


def markdown(res: dict) -> str:
    """An evaluate_all result as tables laid out like the paper's (rows: methods; beat scores
    in percent), one per direction that has any value; when beat metrics besides the primary
    one were asked for (beats_metrics), a table per direction with every beat metric side by
    side; then the notes on what was skipped."""
    ms = res["methods"]
    lines = []
    emb = res.get("embedders") or [DEFAULT_EMBEDDER]
    m2m_cols = [*BEAT_COLUMNS, *(f"FAD[{e}]" for e in emb), *(f"Diversity[{e}]" for e in emb)]
    m2d_cols = [*BEAT_COLUMNS, "FID", "Diversity", "Mean KLD"]
    for title, key, cols in (
        ("Motion-to-music (generated music)", "motion2music", m2m_cols),
        ("Music-to-motion (generated motion)", "music2motion", m2d_cols),
    ):
        if any(m[key] for m in ms):
            used = [c for c in cols if any(m[key].get(c) is not None for m in ms)]
            lines += markdown_table(title, [(m["name"], m[key]) for m in ms], used)
    metrics = res.get("beats_metrics") or []
    side_by_side = bool(metrics) and metrics != [primary_metric(metrics)]
    if side_by_side:
        for title, key in (
            ("Motion-to-music beats by metric (generated music)", "motion2music"),
            ("Music-to-motion beats by metric (generated motion)", "music2motion"),
        ):
            if any(m.get("beats_by_metric", {}).get(key) for m in ms):
                lines += markdown_metric_table(title, ms, key)
    if not lines:
        lines = ["No metric could be computed (see the notes).", ""]
    meta = [f"beats: {res['beats_method']}, percent"] if not metrics or primary_metric(metrics) in metrics else []
    if side_by_side:
        meta.append("beat metrics: " + ", ".join(metrics) + " (BAS 0-1; docs/metrics.md)")
    if res.get("classifier"):
        meta.append(f"motion features: {res['classifier']} ({res['classifier_label']} classifier)")
    lines.append("; ".join(meta) + ".")
    notes = [(m["name"], n) for m in ms for n in m["notes"]]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {name}: {n}" for name, n in notes]
    return "\n".join(lines) + "\n"


def markdown_tables(text: str) -> str:
    """The tables of a markdown() text without its notes (the CLI prints the notes apart)."""
    return text.split("\nNotes:")[0].rstrip()


def method_notes(res: dict) -> list[str]:
    """The notes of an evaluate_all result, each prefixed with its method's name."""
    return [f"{m['name']}: {n}" for m in res["methods"] for n in m["notes"]]
