"""Results of momu-eval as text: console tables (rich renderables, which the CLI prints so
that they fit its terminal), notes on what a result leaves out, and the paper-style markdown
tables of `momu-eval all` (docs/metrics.md)."""

from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table

from momu_models.evaluate.files import listing
from momu_models.evaluate.metrics.beats import DEFAULT_BIN_S
from momu_models.evaluate.metrics.fad import DEFAULT_EMBEDDER


def percent(v) -> str:
    """A beat score for the console: one decimal, "n/a" for NaN (the SD of one pair)."""
    return "n/a" if isinstance(v, float) and not math.isfinite(v) else f"{v:.1f}"


def sync_cell(v) -> str:
    return "n/a" if isinstance(v, float) and not math.isfinite(v) else f"{v:.3f}"


# ---- momu-eval beats / plot / fad / motion / diversity ----------------------------------


def beat_tables(res: dict, per_pair: bool = False) -> list[Table]:
    """The tables of an evaluate_beats result: one row per pair (if per_pair), then the set's
    BCS CSD BHS HSD F1 n (and sync, sync SD when it was computed)."""
    out = []
    sync = "sync" in res
    if per_pair:
        t = Table(title="pairs")
        cols = ["stem", "dur (s)", "gen", "ref", "matched", "BCS", "BHS", "F1"] + (["sync"] if sync else [])
        for c in cols:
            t.add_column(c, justify="left" if c == "stem" else "right")
        for r in res["pairs"]:
            t.add_row(
                r["stem"],
                f"{r['duration_s']:.2f}",
                str(r["n_generated"]),
                str(r["n_reference"]),
                str(r["n_matched"]),
                percent(r["BCS"]),
                percent(r["BHS"]),
                percent(r["F1"]),
                *([sync_cell(r["sync"])] if sync else []),
            )
        out.append(t)
    t = Table(title=f"Beat alignment ({res['kind']}, {res['method']}), percent")
    for c in ("BCS", "CSD", "BHS", "HSD", "F1", "n") + (("sync", "sync SD") if sync else ()):
        t.add_column(c, justify="right")
    t.add_row(
        *(percent(res[c]) for c in ("BCS", "CSD", "BHS", "HSD", "F1")),
        str(res["n"]),
        *((sync_cell(res["sync"]), sync_cell(res["sync_sd"])) if sync else ()),
    )
    out.append(t)
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


def markdown(res: dict) -> str:
    """An evaluate_all result as tables laid out like the paper's (rows: methods; beat scores
    in percent), one per direction that has any value, then the notes on what was skipped."""
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
    if not lines:
        lines = ["No metric could be computed (see the notes).", ""]
    meta = [f"beats: {res['beats_method']}, percent"]
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
