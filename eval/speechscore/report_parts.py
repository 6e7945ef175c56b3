"""The pieces of the report page, each a pure function of the summary and the rows."""

from html import escape

from speechscore import CSV_FILE, SUMMARY_FILE, report_charts
from speechscore.metrics import LABELS, UNITS
DIGITS = {"si_sdr": 2}
SIDES = ("noisy", "enhanced", "clean")


def num(value, metric: str) -> str:
    return "–" if value is None else f"{value:.{DIGITS.get(metric, 3)}f}"


def delta(value, metric: str) -> str:
    if value is None:
        return ""
    css = "up" if value > 0 else "down" if value < 0 else ""
    return f' <span class="{css}">({value:+.{DIGITS.get(metric, 3)}f})</span>'


def parameters_in_words(count) -> str | None:
    """936801 -> '0.94 million (936,801)'."""
    if not isinstance(count, int):
        return None
    if count >= 1_000_000_000:
        words = f"{count / 1e9:.2f} billion"
    elif count >= 100_000:
        words = f"{count / 1e6:.2f} million"
    elif count >= 1_000:
        words = f"{count / 1e3:.1f} thousand"
    else:
        words = str(count)
    return f"{words} ({count:,})"


def header(summary: dict) -> str:
    p, data = summary.get("provenance", {}), summary.get("data", {})
    val_loss = p.get("val_loss")
    items = [("run", p.get("run_label")), ("model", p.get("model")),
             ("parameters", parameters_in_words(p.get("parameters"))), ("epoch", p.get("epoch")),
             ("validation loss", f"{val_loss:.4g}" if isinstance(val_loss, float) else val_loss),
             ("checkpoint", p.get("checkpoint")), ("enhanced files", p.get("enhanced_dir")),
             ("test set", f"{data.get('root', '')} ({data.get('source', '')}; fingerprint {data.get('fingerprint', '')})"),
             ("utterances", f"{summary['count']} ({summary.get('seconds_of_audio', 0):.1f} s of audio)"),
             ("unmatched files", len(data.get("unmatched", [])) or None), ("evaluated", summary.get("created_at"))]
    meta = " · ".join(f"{k}: <b>{escape(str(v))}</b>" for k, v in items if v not in (None, ""))
    links = (f'<p class=meta>Data: <a href="{CSV_FILE}">{CSV_FILE}</a> (every utterance) · '
             f'<a href="{SUMMARY_FILE}">{SUMMARY_FILE}</a> (the summary and how it was computed)</p>')
    return f"<p class=meta>{meta}</p>{links}"


def warnings(summary: dict) -> str:
    items = summary.get("warnings") or []
    if not items:
        return ""
    shown = "".join(f"<li>{escape(w)}</li>" for w in items[:12])
    more = f"<li>… and {len(items) - 12} more (summary.json)</li>" if len(items) > 12 else ""
    return f"<div class=warnings><b>Warnings</b><ul>{shown}{more}</ul></div>"


def summary_table(summary: dict) -> str:
    head = ("<tr><th>metric</th><th>noisy mean</th><th>enhanced mean</th><th>improvement</th>"
            "<th title='95 % bootstrap confidence interval of the mean improvement'>95 % CI</th>"
            "<th>improved / unchanged / worse</th><th>noisy median</th><th>enhanced median</th>"
            "<th>failures (noisy / enhanced)</th></tr>")
    rows = []
    means, medians, fails, changes = summary["means"], summary["medians"], summary["failures"], summary["changes"]
    intervals = summary.get("improvement_intervals") or {}
    for m in summary["metrics"]:
        ci = intervals.get(m) or {}
        bounds = ("–" if ci.get("low") is None else
                  f"{ci['low']:+.{DIGITS.get(m, 3)}f} to {ci['high']:+.{DIGITS.get(m, 3)}f}")
        c = changes[m]
        counts = (f'<span class=up>{c["improved"]}</span> / {c["unchanged"]} / <span class=down>{c["worse"]}</span>'
                  + (f' <span class=muted>({c["undefined"]} undefined)</span>' if c["undefined"] else ""))
        rows.append(
            f"<tr><td>{LABELS.get(m, m)}{UNITS.get(m, '')}</td><td class=num>{num(means['noisy'][m], m)}</td>"
            f"<td class=num>{num(means['enhanced'][m], m)}</td><td class=num>{delta(summary['improvements'][m], m)}</td>"
            f"<td class='num ci'>{bounds}</td><td class=num>{counts}</td><td class=num>{num(medians['noisy'][m], m)}</td>"
            f"<td class=num>{num(medians['enhanced'][m], m)}</td>"
            f"<td class=num>{fails['noisy'][m]['count']} / {fails['enhanced'][m]['count']}</td></tr>")
    note = ""
    ceiling = summary.get("si_sdr_ceiling")
    if ceiling and (ceiling["noisy"]["count"] or ceiling["enhanced"]["count"]):
        note = (f"<p class=muted>SI-SDR at the numerical ceiling (output equal to the reference): "
                f"{ceiling['noisy']['count']} noisy, {ceiling['enhanced']['count']} enhanced. Without them: noisy mean "
                f"{num(ceiling['noisy']['mean_without'], 'si_sdr')}, enhanced mean "
                f"{num(ceiling['enhanced']['mean_without'], 'si_sdr')}, improvement "
                f"{num(ceiling['improvement_without'], 'si_sdr')} dB.</p>")
    overall = changes["any"]
    line = (f"<p>Utterances better on some metric and worse on none: <b class=up>{overall['improved']}</b>; "
            f"unchanged: <b>{overall['unchanged']}</b>; worse on at least one metric: <b class=down>{overall['worse']}</b>"
            f" (<a href='#sort={summary['metrics'][0]}_delta&only=worse'>show them</a>).</p>")
    return f"<table id=summary>{head}{''.join(rows)}</table>{note}{line}"


def charts(summary: dict, rows: list[dict]) -> str:
    ceiling = {r["name"] for r in rows if r.get("si_sdr_ceiling")}
    cards = []
    for m in summary["metrics"]:
        use = [r for r in rows if not (m == "si_sdr" and r["name"] in ceiling)]
        label, unit = LABELS.get(m, m), UNITS.get(m, "")
        left_out = f" <span class=muted>({len(rows) - len(use)} at the ceiling not shown)</span>" if len(use) < len(rows) else ""
        cards.append(f"<div class=chart-pair><h3>{label}{unit}{left_out}</h3>"
                     + report_charts.histogram([r[f"{m}_delta"] for r in use], f"{label}: improvement per utterance", unit)
                     + report_charts.scatter([r[f"{m}_noisy"] for r in use], [r[f"{m}_enhanced"] for r in use],
                                             f"{label}: enhanced against noisy", unit) + "</div>")
    return f"<div class=charts>{''.join(cards)}</div>"


def input_snr(row: dict):
    """The input SNR a chart places an utterance at: the data's, else the estimate."""
    return row.get("snr_db") if row.get("snr_db") is not None else row.get("snr_estimated_db")


def snr_charts(summary: dict, rows: list[dict]) -> str:
    """One chart per metric of the improvement against the input SNR."""
    given = sum(1 for r in rows if r.get("snr_db") is not None)
    source = (summary.get("breakdown") or {}).get("source") or "the data"
    if given == len(rows):
        where = f"input SNR from {source}"
    elif given:
        where = f"input SNR from {source} for {given} of {len(rows)}, the others estimated from clean and noisy"
    else:
        where = "input SNR estimated from clean and noisy (energy of clean over energy of noisy minus clean)"
    ceiling = {r["name"] for r in rows if r.get("si_sdr_ceiling")}
    cards = []
    for m in summary["metrics"]:
        use = [r for r in rows if not (m == "si_sdr" and r["name"] in ceiling)]
        label, unit = LABELS.get(m, m), UNITS.get(m, "")
        cards.append(f"<div><h3>{label}{unit}</h3>"
                     + report_charts.against_snr([input_snr(r) for r in use], [r[f"{m}_delta"] for r in use],
                                                 f"{label}: improvement against input SNR", unit) + "</div>")
    return (f"<p class=muted>Each point is an utterance; below the dashed line it got worse. "
            f"{escape(where[0].upper() + where[1:])}.</p>"
            f"<div class=snr-charts>{''.join(cards)}</div>")


def breakdown(summary: dict) -> str:
    found = summary.get("breakdown")
    if not found:
        return ""
    metrics = summary["metrics"]
    tables = []
    for key, title in (("by_noise", "noise type"), ("by_snr", "SNR of the noisy input"), ("by_voice", "voice")):
        groups = found.get(key) or {}
        if not groups:
            continue
        head = "".join(f"<th>{LABELS.get(m, m)}<br><span class=muted>noisy → enhanced</span></th>" for m in metrics)
        body = "".join(
            f"<tr><td>{escape(name)}</td><td class=num>{g['count']}</td>"
            f"<td class=num>{'<span class=down>' + str(g['worse']) + '</span>' if g.get('worse') else 0}</td>"
            + "".join(f"<td class=num>{num(g[f'{m}_noisy'], m)} → {num(g[f'{m}_enhanced'], m)}{delta(g[f'{m}_delta'], m)}</td>"
                      for m in metrics) + "</tr>" for name, g in groups.items())
        tables.append(f"<table><tr><th>{title}</th><th>n</th><th>worse</th>{head}</tr>{body}</table>")
    return (f"<h2>By noise type, SNR and voice</h2><p class=muted>from {escape(str(found.get('source')))}</p>"
            f"<div class=breakdown>{''.join(tables)}</div>")


def _sort_links(key: str) -> str:
    return (f'<span class=sort><a href="#sort={key}" title="lowest first">▲</a>'
            f'<a href="#sort=-{key}" title="highest first">▼</a></span>')


def utterance_table(summary: dict, rows: list[dict], media: list[dict], scales: list[dict]) -> str:
    metrics = summary["metrics"]
    first = metrics[0]
    controls = (f"<p class=controls>Order: <a href='#sort=n'>as listed</a> <a href='#sort={first}_delta'>worst first "
                f"({LABELS.get(first, first)} improvement)</a> <a href='#sort=-{first}_delta'>best first</a> "
                f"<a href='#sort={first}_delta&only=worse'>regressions only</a> · or use ▲▼ in a column's head · "
                f"<a href='#view=utterances&sort={first}_delta'>utterances alone, worst first</a></p>")
    head = "".join(f"<th>{LABELS.get(m, m)}{UNITS.get(m, '')} {_sort_links(m + '_delta')}<br>"
                   f"<span class=muted>noisy → enhanced (Δ)</span></th>" for m in metrics)
    columns = 6 + len(metrics)
    header = (f"<thead><tr><th># {_sort_links('n')}</th><th>name</th><th>noise</th><th>SNR {_sort_links('snr_db')}</th>"
              f"{head}<th>lag (samples) {_sort_links('lag_enhanced')}</th><th>change</th></tr></thead>")
    # Fixed widths: with automatic layout, browsers give the whole width of the media row
    # (one cell spanning every column) to the first column.
    widths = ["44px", "120px", "70px", "84px", *["auto"] * len(metrics), "84px", "150px"]
    colgroup = "<colgroup>" + "".join(f'<col style="width:{w}">' for w in widths) + "</colgroup>"
    bodies = [_utterance(i, row, metrics, media[i] if media else None, scales[i] if scales else None, columns)
              for i, row in enumerate(rows)]
    return f"{controls}<table id=utterances>{colgroup}{header}{''.join(bodies)}</table>"


def _utterance(index: int, row: dict, metrics, paths, scale, columns: int) -> str:
    data = {"n": index + 1, "snr_db": row.get("snr_db"), "lag_enhanced": row.get("lag_enhanced")}
    for m in metrics:
        for side in ("noisy", "enhanced", "delta"):
            data[f"{m}_{side}"] = row[f"{m}_{side}"]
    attrs = " ".join(f'data-{k}="{v!r}"' for k, v in data.items() if v is not None)
    snr = "" if row.get("snr_db") is None else f"{row['snr_db']:.1f} dB"
    cells = [f"<td class=num>{index + 1}</td><td class=name>{escape(row['name'])}<br>"
             f"<span class=muted>{row['seconds']:.2f} s</span></td><td>{escape(row.get('noise') or '')}</td>"
             f"<td class=num>{snr}</td>"]
    for m in metrics:
        cells.append(f"<td class=num>{num(row[f'{m}_noisy'], m)} → {num(row[f'{m}_enhanced'], m)}{delta(row[f'{m}_delta'], m)}</td>")
    lag = row.get("lag_enhanced")
    cells.append(f"<td class=num>{'?' if lag is None else lag}{' ⚠' if lag else ''}</td>")
    cells.append(f"<td>{row['change']}<div class=notes>{escape(row['notes'])}</div></td>")
    media = f"<tr class=players><td colspan={columns}>{_media(paths, scale)}</td></tr>" if paths else ""
    return (f'<tbody id="u{index + 1}" data-name="{escape(row["name"])}" data-change="{row["change"]}" {attrs}>'
            f'<tr class=scores>{"".join(cells)}</tr>{media}</tbody>')


def _time_ticks(seconds: float) -> list[float]:
    step = next((s for s in (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300) if seconds / s <= 6), 600)
    ticks, t = [], 0.0
    while t <= seconds + 1e-9:
        ticks.append(round(t, 3))
        t += step
    return ticks


def _media(paths: dict, scale: dict) -> str:
    seconds, top_khz = scale["seconds"], scale["max_hz"] / 1000
    y_ticks = "".join(f'<span class=yt style="bottom:{100 * k / top_khz:.2f}%">{k:g} kHz</span>'
                      for k in range(0, int(top_khz) + 1, 2))
    x_ticks = "".join(f'<span class=xt style="left:{100 * t / seconds:.2f}%">{t:g}</span>' for t in _time_ticks(seconds))
    figures = []
    for side in SIDES:
        figures.append(f'<figure class=spec><figcaption>{side}</figcaption><div class=plot>'
                       f'<img src="{paths[side]["image"]}" alt="{side} spectrogram">{y_ticks}{x_ticks}</div>'
                       f'<div class=xlabel>time (s)</div>'
                       f'<audio controls preload="metadata" src="{paths[side]["audio"]}"></audio></figure>')
    bar = (f'<div class=colour><img src="{paths["colour_bar"]}" alt="colour scale"><div class=labels>'
           f'<span>{scale["top_db"]:.0f} dB</span><span>{(scale["top_db"] + scale["bottom_db"]) / 2:.0f}</span>'
           f'<span>{scale["bottom_db"]:.0f} dB</span></div></div>')
    return f"<div class=media>{''.join(figures)}{bar}</div>"
