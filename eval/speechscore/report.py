"""The HTML report: summary, conventions and a table of every utterance with players and
spectrograms for noisy, enhanced and clean. Fully offline: media sit beside the page and
are referenced by relative paths; no fonts, scripts or styles come from the network."""

from html import escape
from pathlib import Path

import numpy as np

from speechscore import audio, spectrogram

MEDIA_DIR = "report_files"
SIDES = ("noisy", "enhanced", "clean")
LABELS = {"pesq_wb": "PESQ-WB", "pesq_nb": "PESQ-NB", "stoi": "STOI", "estoi": "ESTOI", "si_sdr": "SI-SDR (dB)"}
DIGITS = {"si_sdr": 2}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top}
th{background:#f2f2f2;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.up{color:#176b24}.down{color:#a11}figure{margin:0;width:260px}figure img{width:256px;height:128px;display:block}
audio{width:256px;height:32px}.notes{max-width:20em;font-size:90%;color:#a11}.muted{color:#666}
"""

# Marks every player ready or failed, and counts them, so a reader (or a headless test)
# can see at once whether all the audio loads.
_SCRIPT = """
(function () {
  var players = Array.prototype.slice.call(document.querySelectorAll("audio"));
  var status = document.getElementById("audio-status");
  function update() {
    var ready = 0, failed = 0;
    players.forEach(function (a) {
      if (a.error) { a.dataset.state = "error"; failed++; }
      else if (a.readyState >= 1 && a.duration > 0) {
        a.dataset.state = "ready"; a.dataset.duration = a.duration.toFixed(3); ready++;
      }
    });
    var images = document.querySelectorAll("img"), shown = 0;
    images.forEach(function (img) { if (img.complete && img.naturalWidth > 0) shown++; });
    status.dataset.images = shown; status.dataset.imagesTotal = images.length;
    status.dataset.ready = ready; status.dataset.failed = failed; status.dataset.total = players.length;
    status.textContent = ready + " of " + players.length + " audio players ready" + (failed ? ", " + failed + " failed" : "");
    if (ready + failed < players.length) { setTimeout(update, 200); } else { status.dataset.done = "1"; }
  }
  players.forEach(function (a) { a.addEventListener("loadedmetadata", update); a.addEventListener("error", update); });
  update();
})();
"""


def media_paths(index: int) -> dict[str, dict[str, str]]:
    """Relative paths of one utterance's media (by row number: names may hold any character)."""
    return {side: {"audio": f"{MEDIA_DIR}/{index:05d}-{side}.wav", "image": f"{MEDIA_DIR}/{index:05d}-{side}.png"}
            for side in SIDES}


def write_media(folder: Path, index: int, waves: dict[str, np.ndarray]) -> None:
    """16-bit WAVs (every browser plays them) and same-scale spectrograms of one utterance."""
    paths = media_paths(index)
    images = spectrogram.spectrogram_pngs(waves)
    for side, wave in waves.items():
        audio.write(folder / paths[side]["audio"], wave, subtype="PCM_16")
        (folder / paths[side]["image"]).write_bytes(images[side])


def _num(value, metric: str) -> str:
    return "–" if value is None else f"{value:.{DIGITS.get(metric, 3)}f}"


def _delta(value, metric: str) -> str:
    if value is None:
        return ""
    css = "up" if value > 0 else "down" if value < 0 else ""
    return f' <span class="{css}">({value:+.{DIGITS.get(metric, 3)}f})</span>'


def _summary_table(summary: dict) -> str:
    head = "<tr><th>metric</th><th>noisy mean</th><th>enhanced mean</th><th>improvement</th>" \
           "<th>noisy median</th><th>enhanced median</th><th>failures (noisy / enhanced)</th></tr>"
    rows = []
    for m in summary["metrics"]:
        means, medians, fails = summary["means"], summary["medians"], summary["failures"]
        rows.append(
            f"<tr><td>{LABELS.get(m, m)}</td><td class=num>{_num(means['noisy'][m], m)}</td>"
            f"<td class=num>{_num(means['enhanced'][m], m)}</td><td class=num>{_delta(summary['improvements'][m], m)}</td>"
            f"<td class=num>{_num(medians['noisy'][m], m)}</td><td class=num>{_num(medians['enhanced'][m], m)}</td>"
            f"<td class=num>{fails['noisy'][m]['count']} / {fails['enhanced'][m]['count']}</td></tr>")
    return f"<table id=summary>{head}{''.join(rows)}</table>"


def _provenance(summary: dict) -> str:
    p, data = summary.get("provenance", {}), summary.get("data", {})
    items = [("run", p.get("run_label")), ("model", p.get("model")), ("parameters", p.get("parameters")),
             ("checkpoint", p.get("checkpoint")), ("enhanced files", p.get("enhanced_dir")),
             ("data", f"{data.get('root', '')} ({data.get('source', '')})"), ("utterances", summary["count"]),
             ("unmatched files", len(data.get("unmatched", [])) or None), ("evaluated", summary.get("created_at"))]
    return "<ul>" + "".join(f"<li>{k}: {escape(str(v))}</li>" for k, v in items if v not in (None, "")) + "</ul>"


def _utterance_row(index: int, row: dict, metrics) -> str:
    cells = [f"<td class=num>{index + 1}</td><td>{escape(row['name'])}</td><td class=num>{row['seconds']:.2f}</td>"]
    for m in metrics:
        cells.append(f"<td class=num>{_num(row[f'{m}_noisy'], m)} → {_num(row[f'{m}_enhanced'], m)}"
                     f"{_delta(row[f'{m}_delta'], m)}</td>")
    for side, paths in media_paths(index).items():
        cells.append(f'<td><figure><img src="{paths["image"]}" alt="{side} spectrogram">'
                     f'<audio controls preload="metadata" src="{paths["audio"]}"></audio></figure></td>')
    cells.append(f"<td class=notes>{escape(row['notes'])}</td>")
    return f'<tr class=utterance data-name="{escape(row["name"])}">{"".join(cells)}</tr>'


def render(summary: dict, rows: list[dict]) -> str:
    metrics = summary["metrics"]
    head = "".join(f"<th>{LABELS.get(m, m)}<br><span class=muted>noisy → enhanced</span></th>" for m in metrics)
    table = (f"<table id=utterances><tr><th>#</th><th>name</th><th>s</th>{head}<th>noisy</th><th>enhanced</th>"
             f"<th>clean</th><th>notes</th></tr>{''.join(_utterance_row(i, r, metrics) for i, r in enumerate(rows))}</table>")
    conventions = "".join(f"<li><b>{escape(k)}</b>: {escape(str(v))}</li>" for k, v in summary.get("conventions", {}).items())
    title = escape(f"Evaluation {summary.get('name', '')}")
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f"<style>{_CSS}</style></head><body><h1>{title}</h1>{_provenance(summary)}"
            f"<h2>Summary</h2>{_summary_table(summary)}<details><summary>Conventions</summary><ul>{conventions}</ul></details>"
            f"<h2>Utterances</h2><p id=audio-status>audio players loading…</p>{table}"
            f"<script>{_SCRIPT}</script></body></html>\n")
