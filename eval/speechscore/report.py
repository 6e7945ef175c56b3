"""The HTML report: who and what was evaluated, the summary with counts of utterances
improved and made worse with bootstrap intervals, charts of the improvements (also against
the input SNR), a breakdown by noise type, SNR and voice, warnings on where the model hurts
at the top,
and every utterance with its scores over its three players and spectrograms (noisy,
enhanced, clean; time and frequency axes, one colour scale), sortable and filterable.

Fully offline: media sit beside the page and are referenced by relative paths; no fonts,
scripts or styles come from the network. Pieces: report_parts (markup), report_charts
(SVG), report_assets (CSS and the two short scripts)."""

from html import escape
from pathlib import Path

import numpy as np

from speechscore import audio, report_parts, spectrogram
from speechscore.report_assets import CSS, SORT_SCRIPT, STATUS_SCRIPT

MEDIA_DIR = "report_files"
SIDES = report_parts.SIDES
COLOUR_BAR = f"{MEDIA_DIR}/colour-scale.png"


def media_paths(index: int) -> dict:
    """Relative paths of one utterance's media (by row number: names may hold any character)."""
    paths = {side: {"audio": f"{MEDIA_DIR}/{index:05d}-{side}.wav", "image": f"{MEDIA_DIR}/{index:05d}-{side}.png"}
             for side in SIDES}
    paths["colour_bar"] = COLOUR_BAR
    return paths


def write_media(folder: Path, index: int, waves: dict[str, np.ndarray]) -> dict:
    """16-bit WAVs (every browser plays them) and same-scale spectrograms of one
    utterance; returns their scale (for the axes and the colour bar)."""
    paths = media_paths(index)
    images, scale = spectrogram.spectrograms(waves)
    for side, wave in waves.items():
        audio.write(folder / paths[side]["audio"], wave, subtype="PCM_16")
        (folder / paths[side]["image"]).write_bytes(images[side])
    if not (folder / COLOUR_BAR).is_file():
        (folder / COLOUR_BAR).write_bytes(spectrogram.colour_bar_png())
    return scale


def render(summary: dict, rows: list[dict], scales: list[dict] | None = None) -> str:
    """The page; `scales` (one per row, from write_media) places the spectrogram axes."""
    scales = scales or []
    media = [media_paths(i) for i in range(len(rows))] if scales else []
    where = Path(str(summary.get("data", {}).get("root", ""))).name
    title = escape(f"Evaluation of {summary.get('label') or summary.get('name', '')}" + (f" on {where}" if where else ""))
    conventions = "".join(f"<li><b>{escape(k)}</b>: {escape(str(v))}</li>"
                          for k, v in summary.get("conventions", {}).items())
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f"<meta name=viewport content='width=device-width'><style>{CSS}</style></head><body>"
            f"<h1>{title}</h1>{report_parts.header(summary)}<div class=overview>{report_parts.warnings(summary)}"
            f"<h2>Summary</h2>{report_parts.summary_table(summary)}"
            f"<details><summary>Conventions</summary><ul>{conventions}</ul></details>"
            f"<h2>Improvements per utterance</h2>{report_parts.charts(summary, rows)}"
            f"<h2>Improvement against input SNR</h2>{report_parts.snr_charts(summary, rows)}"
            f"{report_parts.breakdown(summary)}</div>"
            f"<h2>Utterances</h2><p id=audio-status>audio players loading…</p>"
            f"{report_parts.utterance_table(summary, rows, media, scales)}"
            f"<script>{SORT_SCRIPT}</script><script>{STATUS_SCRIPT}</script></body></html>\n")
