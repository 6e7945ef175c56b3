"""Where the model hurts: warnings when a mean improvement is negative or more than a tenth
of the utterances got worse, broken down by the conditions the data name (noise kind, SNR
band, voice), and a note on a checkpoint saved after very few epochs. Pure functions of the
summary; the runner puts their lines first in summary.json's warnings."""

from speechscore.conditions import GROUPS
from speechscore.metrics import LABELS
from speechscore.summary import CHANGE_TOLERANCE

WORSE_SHARE = 0.10  # more than this share of utterances worse on some metric: a warning
FEW_EPOCHS = 3  # a checkpoint from an epoch below this: a note
GROUPS_SHOWN = 4
CONVENTION = (f"a warning when a mean improvement is below zero, or when more than {WORSE_SHARE:.0%} of the utterances "
              "got worse on some metric (beyond its tolerance), with the noise kinds, SNR bands and voices where "
              "utterances got worse; without either, a condition with at least two utterances and a negative mean "
              f"improvement is still named; a note when the checkpoint is from an epoch below {FEW_EPOCHS}")


def delta_text(metric: str, value) -> str:
    if value is None:
        return f"{LABELS.get(metric, metric)} -"
    return f"{LABELS.get(metric, metric)} {value:+.2f} dB" if metric == "si_sdr" else f"{LABELS.get(metric, metric)} {value:+.3f}"


def _negative(group: dict, metrics) -> bool:
    return any(group.get(f"{m}_delta") is not None and group[f"{m}_delta"] < -CHANGE_TOLERANCE.get(m, 0.0)
               for m in metrics)


def where_it_hurts(summary: dict) -> tuple[list[str], dict]:
    """(warning lines, summary.json's `regressions` record) from a summary with means,
    improvements, improvement_intervals, changes and breakdown."""
    metrics = summary["metrics"]
    lines = []
    negative = [m for m in metrics if summary["improvements"].get(m) is not None and summary["improvements"][m] < 0]
    if negative:
        intervals = summary.get("improvement_intervals") or {}
        parts = []
        for m in negative:
            ci = intervals.get(m) or {}
            digits = 2 if m == "si_sdr" else 3
            bounds = (f" (95 % CI {ci['low']:+.{digits}f} to {ci['high']:+.{digits}f})"
                      if ci.get("low") is not None and ci.get("high") is not None else "")
            parts.append(delta_text(m, summary["improvements"][m]) + bounds)
        lines.append("mean improvement below zero: " + ", ".join(parts)
                     + ": on average the model makes this test set worse")
    overall = summary["changes"]["any"]
    defined = overall["improved"] + overall["unchanged"] + overall["worse"]
    share = overall["worse"] / defined if defined else 0.0
    breakdown = summary.get("breakdown") or {}
    if share > WORSE_SHARE:
        where = "" if breakdown else ("; the data name no noise kind, SNR or voice to break it down by "
                                      "(a manifest.json beside them, or names like babble_5dB.wav, would)")
        lines.append(f"{overall['worse']} of {defined} utterances ({share:.0%}) got worse on at least one metric, "
                     f"more than a tenth{where}")
    alarm = bool(negative) or share > WORSE_SHARE
    flagged = {}
    for key, kind in GROUPS:
        groups = breakdown.get(key) or {}
        if alarm:
            listed = [(n, g) for n, g in groups.items() if g.get("worse")]
        else:
            listed = [(n, g) for n, g in groups.items() if g["count"] >= 2 and _negative(g, metrics)]
        if not listed:
            continue
        listed.sort(key=lambda item: (-item[1]["worse"] / max(item[1].get("defined") or item[1]["count"], 1),
                                      -item[1]["worse"], item[0]))
        flagged[key] = [n for n, _ in listed]
        shown = [f"{name} {g['worse']} of {g['count']} (" + ", ".join(delta_text(m, g.get(f"{m}_delta")) for m in metrics)
                 + ")" for name, g in listed[:GROUPS_SHOWN]]
        more = f"; {len(listed) - GROUPS_SHOWN} more in summary.json's breakdown" if len(listed) > GROUPS_SHOWN else ""
        lines.append(f"worse by {kind} (worse of all, mean improvements): " + "; ".join(shown) + more)
    record = {"worse": overall["worse"], "defined": defined, "share": round(share, 4), "threshold": WORSE_SHARE,
              "negative_means": negative, "flagged": flagged}
    return lines, record


def few_epochs_note(epoch, epochs_run=None) -> str | None:
    """A note when the checkpoint's weights come from an epoch below FEW_EPOCHS."""
    if not isinstance(epoch, int) or epoch >= FEW_EPOCHS:
        return None
    if isinstance(epochs_run, int) and epochs_run >= FEW_EPOCHS:
        return (f"the checkpoint's weights are from epoch {epoch} (fewer than {FEW_EPOCHS}) although its run trained "
                f"{epochs_run}: validation never improved after epoch {epoch} (check the learning rate and the loss)")
    return (f"the checkpoint's weights are from epoch {epoch} (fewer than {FEW_EPOCHS}): "
            "so little training says little about what the model or its recipe can do")
