"""Per-utterance rows, the summary statistics and the CSV: pure functions over scores."""

import csv
import io
import statistics
from dataclasses import dataclass

SIDES = ("noisy", "enhanced")


@dataclass(frozen=True)
class Utterance:
    name: str
    noisy_file: str
    clean_file: str
    seconds: float
    sample_rate: int  # the noisy file's own rate
    scores: dict  # {"noisy": {metric: (value, reason)}, "enhanced": {...}}
    enhanced_file: str | None = None


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
    row["notes"] = "; ".join(f"{side} {', '.join(ms)}: {reason}" for (side, reason), ms in problems.items())
    row.update(noisy_file=utt.noisy_file, clean_file=utt.clean_file, enhanced_file=utt.enhanced_file or "")
    return row


def columns(metrics) -> list[str]:
    cols = ["name", "seconds", "sample_rate"]
    for m in metrics:
        cols += [f"{m}_noisy", f"{m}_enhanced", f"{m}_delta"]
    return cols + ["notes", "noisy_file", "clean_file", "enhanced_file"]


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
    rows_with_problems = sum(1 for r in rows if r["notes"])
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
    }
