"""Per-utterance rows, the summary statistics and the CSV: pure functions over scores."""

import csv
import io
import statistics
from dataclasses import dataclass, field

SIDES = ("noisy", "enhanced")
# Improvements within these count as unchanged (metrics.CONVENTIONS["changes"]).
CHANGE_TOLERANCE = {"pesq_wb": 0.005, "pesq_nb": 0.005, "stoi": 0.0005, "estoi": 0.0005, "si_sdr": 0.05}


@dataclass(frozen=True)
class Utterance:
    name: str
    noisy_file: str
    clean_file: str
    seconds: float
    sample_rate: int  # the noisy file's own rate
    scores: dict  # {"noisy": {metric: (value, reason)}, "enhanced": {...}}
    enhanced_file: str | None = None
    lags: dict = field(default_factory=dict)  # {"noisy": (samples or None, correlation), "enhanced": ...}
    ceiling: dict = field(default_factory=dict)  # {"noisy": bool, "enhanced": bool}: SI-SDR at the ceiling
    # {"noise": str or None, "snr_db": float or None, "voice": str or None, "snr_estimated_db": float or None}
    conditions: dict = field(default_factory=dict)


def make_row(utt: Utterance, metrics) -> dict:
    """One CSV/HTML row: every metric for both sides and the improvement, and the reasons
    for the empty ones under notes."""
    row = {"name": utt.name, "seconds": round(utt.seconds, 3), "sample_rate": utt.sample_rate}
    problems: dict[tuple[str, str], list[str]] = {}
    for m in metrics:
        values = {}
        for side in SIDES:
            value, reason = utt.scores[side][m]
            values[side] = value
            row[f"{m}_{side}"] = value
            if value is None:
                problems.setdefault((side, reason or "not computed"), []).append(m)
        both = values["noisy"] is not None and values["enhanced"] is not None
        row[f"{m}_delta"] = values["enhanced"] - values["noisy"] if both else None
    notes = [f"{side} {', '.join(ms)}: {reason}" for (side, reason), ms in problems.items()]
    for side in SIDES:
        row[f"lag_{side}"] = (utt.lags.get(side) or (None, 0.0))[0]
        if row[f"lag_{side}"]:
            notes.append(f"{side} lags the clean reference by {row[f'lag_{side}']} samples")
    row["si_sdr_ceiling"] = ", ".join(side for side in SIDES if utt.ceiling.get(side))
    if row["si_sdr_ceiling"]:
        notes.append(f"{row['si_sdr_ceiling']} SI-SDR at the numerical ceiling (equal to the reference)")
    row["notes"] = "; ".join(notes)
    row["noise"], row["snr_db"] = utt.conditions.get("noise"), utt.conditions.get("snr_db")
    row["voice"], row["snr_estimated_db"] = utt.conditions.get("voice"), utt.conditions.get("snr_estimated_db")
    row["change"] = change(row, metrics)
    row.update(noisy_file=utt.noisy_file, clean_file=utt.clean_file, enhanced_file=utt.enhanced_file or "")
    return row


def change(row: dict, metrics) -> str:
    """worse if any metric got worse beyond its tolerance, else improved if any improved,
    else unchanged; undefined when no improvement could be computed."""
    deltas = {m: row[f"{m}_delta"] for m in metrics if row[f"{m}_delta"] is not None}
    if not deltas:
        return "undefined"
    if any(d < -CHANGE_TOLERANCE.get(m, 0.0) for m, d in deltas.items()):
        return "worse"
    return "improved" if any(d > CHANGE_TOLERANCE.get(m, 0.0) for m, d in deltas.items()) else "unchanged"


def columns(metrics) -> list[str]:
    cols = ["name", "seconds", "sample_rate"]
    for m in metrics:
        cols += [f"{m}_noisy", f"{m}_enhanced", f"{m}_delta"]
    return cols + ["lag_noisy", "lag_enhanced", "si_sdr_ceiling", "noise", "snr_db", "voice", "snr_estimated_db",
                   "change", "notes",
                   "noisy_file", "clean_file", "enhanced_file"]


def csv_text(rows: list[dict], metrics) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(metrics), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def _stats(values: list) -> tuple[float | None, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    return statistics.fmean(present), statistics.median(present)


def summarize(utterances: list[Utterance], rows: list[dict], metrics) -> dict:
    """count, means, medians (noisy, enhanced, delta), improvements and failures."""
    means = {side: {} for side in (*SIDES, "delta")}
    medians = {side: {} for side in (*SIDES, "delta")}
    failures = {side: {} for side in SIDES}
    for m in metrics:
        for side in (*SIDES, "delta"):
            means[side][m], medians[side][m] = _stats([r[f"{m}_{side}"] for r in rows])
        for side in SIDES:
            reasons: dict[str, int] = {}
            for utt in utterances:
                value, reason = utt.scores[side][m]
                if value is None:
                    reasons[reason or "not computed"] = reasons.get(reason or "not computed", 0) + 1
            failures[side][m] = {"count": sum(reasons.values()), "reasons": reasons}
    # Counted from the scores, not from notes: notes also hold lags and ceiling flags.
    rows_with_problems = sum(1 for utt in utterances
                             if any(utt.scores[side][m][0] is None for side in SIDES for m in metrics))
    return {
        "count": len(rows),
        "metrics": list(metrics),
        "means": means,
        "medians": medians,
        # Paired: the mean over utterances where both sides are defined.
        "improvements": dict(means["delta"]),
        "failures": failures,
        "utterances_with_failures": rows_with_problems,
        "seconds_of_audio": round(sum(u.seconds for u in utterances), 3),
        "changes": changes(rows, metrics),
        "si_sdr_ceiling": ceiling_summary(utterances, rows) if "si_sdr" in metrics else None,
        "lags": lag_summary(rows),
    }


def changes(rows: list[dict], metrics) -> dict:
    """Per metric (and overall, by `change`): utterances improved, unchanged, worse, undefined."""
    out = {}
    for m in metrics:
        counts = {"improved": 0, "unchanged": 0, "worse": 0, "undefined": 0}
        tolerance = CHANGE_TOLERANCE.get(m, 0.0)
        for r in rows:
            d = r[f"{m}_delta"]
            key = "undefined" if d is None else "improved" if d > tolerance else "worse" if d < -tolerance else "unchanged"
            counts[key] += 1
        out[m] = {**counts, "tolerance": tolerance}
    overall = {"improved": 0, "unchanged": 0, "worse": 0, "undefined": 0}
    for r in rows:
        overall[r["change"]] += 1
    out["any"] = overall
    return out


def ceiling_summary(utterances: list[Utterance], rows: list[dict]) -> dict:
    """SI-SDR values at the numerical ceiling per side, and the means without them."""
    by_name = {r["name"]: r for r in rows}
    out = {}
    for side in SIDES:
        flagged = [u.name for u in utterances if u.ceiling.get(side)]
        kept = [by_name[u.name][f"si_sdr_{side}"] for u in utterances if not u.ceiling.get(side)]
        out[side] = {"count": len(flagged), "names": flagged[:20], "mean_without": _stats(kept)[0]}
    deltas = [by_name[u.name]["si_sdr_delta"] for u in utterances if not any(u.ceiling.get(s) for s in SIDES)]
    out["improvement_without"] = _stats(deltas)[0]
    return out


def lag_summary(rows: list[dict]) -> dict:
    """Per side: how many signals lag their reference, and by how much (samples: count)."""
    out = {}
    for side in SIDES:
        lags: dict[str, int] = {}
        for r in rows:
            if r[f"lag_{side}"]:
                lags[str(r[f"lag_{side}"])] = lags.get(str(r[f"lag_{side}"]), 0) + 1
        out[side] = {"nonzero": sum(lags.values()), "by_samples": lags,
                     "unclear": sum(1 for r in rows if r[f"lag_{side}"] is None)}
    return out
