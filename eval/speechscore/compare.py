"""The table across evaluated runs (every eval/reports/*/summary.json): run, model,
parameters, the enhanced means and their improvements, with the noisy input as the first
row. Reports of different test sets are never mixed: each set gets its own block."""

import csv
import io
import json
from pathlib import Path

from speechscore import SUMMARY_FILE

METRICS = ("pesq_wb", "stoi", "estoi", "si_sdr")
COLUMNS = ["run", "model", "parameters", *METRICS, *(f"{m}_delta" for m in METRICS), "count", "report", "data"]
HEADERS = {"pesq_wb": "PESQ-WB", "stoi": "STOI", "estoi": "ESTOI", "si_sdr": "SI-SDR", "pesq_wb_delta": "ΔPESQ",
           "stoi_delta": "ΔSTOI", "estoi_delta": "ΔESTOI", "si_sdr_delta": "ΔSI-SDR"}


def load_summaries(reports_dir: Path) -> list[tuple[str, dict]]:
    """(folder name, summary) of every readable report, skipping hidden folders (the cache)."""
    found = []
    if not reports_dir.is_dir():
        return found
    for folder in sorted(reports_dir.iterdir()):
        path = folder / SUMMARY_FILE
        if folder.name.startswith(".") or not path.is_file():
            continue
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(summary, dict) and "means" in summary:
            found.append((folder.name, summary))
    return found


def comparison_rows(summaries: list[tuple[str, dict]]) -> list[dict]:
    """Rows grouped by test set; in each group the noisy input first, then the runs by
    PESQ-WB, best first."""
    groups: dict[str, list] = {}
    for folder, summary in summaries:
        groups.setdefault(summary.get("data", {}).get("fingerprint", "?"), []).append((folder, summary))
    rows = []
    for fingerprint, members in groups.items():
        latest = max(members, key=lambda m: m[1].get("created_at", ""))[1]
        data = f"{latest.get('data', {}).get('root', '?')} [{fingerprint}]"
        noisy = latest["means"]["noisy"]
        rows.append({"run": "noisy input", "model": "-", "parameters": None, **{m: noisy.get(m) for m in METRICS},
                     **{f"{m}_delta": None for m in METRICS},
                     "count": latest.get("count"), "report": "", "data": data})
        runs = []
        for folder, summary in members:
            p = summary.get("provenance", {})
            label = p.get("run_label") or summary.get("label") or summary.get("name") or folder
            runs.append({"run": label, "model": p.get("model") or "-",
                         "parameters": p.get("parameters"),
                         **{m: summary["means"]["enhanced"].get(m) for m in METRICS},
                         **{f"{m}_delta": summary.get("improvements", {}).get(m) for m in METRICS},
                         "count": summary.get("count"), "report": folder, "data": data})
        rows += sorted(runs, key=lambda r: -(r["pesq_wb"] if r["pesq_wb"] is not None else float("-inf")))
    return rows


def _cell(value, column: str) -> str:
    if value is None:
        return "" if column.endswith("_delta") else "-"
    if isinstance(value, float):
        digits = 2 if column.startswith("si_sdr") else 3
        return f"{value:+.{digits}f}" if column.endswith("_delta") else f"{value:.{digits}f}"
    if column == "parameters":
        return f"{value / 1e6:.2f} M"
    return str(value)


def to_markdown(rows: list[dict]) -> str:
    if not rows:
        return "no evaluations yet (run `kjob eval-local`)\n"
    shown = [c for c in COLUMNS if c != "data"]
    blocks, current = [], None
    for row in rows:
        if row["data"] != current:
            current = row["data"]
            blocks.append(f"\ntest set: {current}\n\n| {' | '.join(HEADERS.get(c, c) for c in shown)} |\n"
                          f"|{'|'.join('---' if c in ('run', 'model', 'report') else '---:' for c in shown)}|")
        blocks.append("| " + " | ".join(_cell(row[c], c) for c in shown) + " |")
    return "\n".join(blocks).lstrip("\n") + "\n"


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: "" if row[c] is None else row[c] for c in COLUMNS})
    return buffer.getvalue()


def compare(reports_dir: Path, fmt: str = "markdown") -> str:
    """The comparison table as Markdown or CSV text."""
    rows = comparison_rows(load_summaries(Path(reports_dir)))
    return to_csv(rows) if fmt == "csv" else to_markdown(rows)
