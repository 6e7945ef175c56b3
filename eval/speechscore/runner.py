"""evaluate(): discover the test pairs, enhance them on the CPU, score both sides in a
process pool, and write per_utterance.csv, summary.json and (optionally) the HTML report.

The only function here with side effects beyond its output folder is the noisy-score
cache. Outputs are written to a temporary folder and renamed into place at the end, so
a failed or interrupted evaluation never leaves half a report.
"""

import datetime
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import UsageError
from kjob.fsutil import atomic_write_json, atomic_write_text
from speechscore import CSV_FILE, REPORT_FILE, SAMPLE_RATE, SUMMARY_FILE, SUMMARY_FORMAT, audio, loading, report, summary as summ
from speechscore.cache import NoisyScoreCache
from speechscore.discovery import discover
from speechscore.metrics import CONVENTIONS, active_metrics
from speechscore.scoring import cpu_count, score_tasks


ENHANCED_DIR = "enhanced"
# What a runs table shows of an evaluation by default (summary.json `run_metrics.columns`).
TABLE_COLUMNS = ("pesq_wb", "stoi", "estoi", "si_sdr", "pesq_wb_delta", "si_sdr_delta")


@dataclass(frozen=True)
class EvalRequest:
    data: Path  # a folder, an archive or a CSV manifest
    out: Path  # the report folder (replaced as a whole)
    checkpoint: Path | None = None  # exactly one of checkpoint and enhanced
    model: str | None = None  # architecture for a plain state_dict
    enhanced: Path | None = None  # already-enhanced files, matched by name
    save_audio: bool = False
    pesq_nb: bool = False
    report: bool = False
    jobs: int | None = None  # scoring processes (default: all cores)
    cache_dir: Path | None = None  # noisy scores and extracted archives; None: no cache
    name: str | None = None  # default: the out folder's name
    provenance: dict = field(default_factory=dict)  # run, version, backend, run_label


def evaluate(request: EvalRequest, progress=None) -> dict:
    """Run one evaluation and return its summary (also written to out/summary.json).

    `progress(stage, done, total)` is called as loading, enhancing and scoring go on."""
    started = time.perf_counter()
    if (request.checkpoint is None) == (request.enhanced is None):
        raise UsageError("evaluate needs exactly one of a checkpoint or a folder of enhanced files")
    out = Path(request.out).resolve()
    _check_out(out)
    metrics = active_metrics(request.pesq_nb)
    timing = {}
    with tempfile.TemporaryDirectory(prefix="speechscore-") as scratch:
        extract_dir = request.cache_dir / "extracted" if request.cache_dir else Path(scratch)
        found = discover(Path(request.data), extract_dir)
        model = None
        if request.checkpoint is not None:
            from speechscore.model import load_model

            model = load_model(Path(request.checkpoint), request.model)  # fails before any audio is read
        pairs = loading.load_pairs(found.pairs, progress)
        unmatched = list(found.unmatched)
        timing["load_s"] = time.perf_counter() - started
        mark = time.perf_counter()
        if model is not None:
            from speechscore.model import enhance_all

            enhanced = enhance_all(model.model, [p.noisy for p in pairs], [p.pair.name for p in pairs],
                                   progress=progress)
        else:
            enhanced, extra = loading.load_enhanced(Path(request.enhanced), pairs)
            unmatched += extra
        timing["enhance_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        scores, cache, fingerprint = _score(request, pairs, enhanced, metrics, progress)
        timing["score_s"] = time.perf_counter() - mark

    utterances = [summ.Utterance(p.pair.name, str(p.pair.noisy), str(p.pair.clean), p.noisy.size / SAMPLE_RATE, p.rate,
                                 scores[i], None) for i, p in enumerate(pairs)]
    rows = [summ.make_row(u, metrics) for u in utterances]
    result = summ.summarize(utterances, rows, metrics)
    data = _data_record(request, found, pairs, unmatched, fingerprint)
    result.update(
        format_version=SUMMARY_FORMAT,
        name=request.name or out.name,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        conventions=CONVENTIONS,
        provenance=_provenance(request, model),
        data=data,
        noisy_cache=cache.stats(),
        versions={k: v for k, v in cache.settings.items() if k != "metrics"},
        jobs=_jobs(request),
        warnings=_warnings(unmatched, model, data["resampled_from"]),
    )
    result["run_metrics"] = run_metrics(result)
    mark = time.perf_counter()
    _write(out, request, result, rows, pairs, enhanced, metrics)
    timing["write_s"] = time.perf_counter() - mark
    timing["total_s"] = time.perf_counter() - started
    result["timing"] = {k: round(v, 3) for k, v in timing.items()}
    atomic_write_json(out / SUMMARY_FILE, result)  # again, now with the write time
    return result


def _jobs(request: EvalRequest) -> int:
    return max(1, request.jobs or cpu_count())


def _score(request, pairs, enhanced, metrics, progress):
    """{index: {"noisy": scores, "enhanced": scores}}, the cache, and the data fingerprint."""
    cache = NoisyScoreCache(request.cache_dir / "noisy-scores" if request.cache_dir else None, metrics)
    digests = [(audio.file_digest(p.pair.noisy), audio.file_digest(p.pair.clean)) for p in pairs]
    fingerprint = hashlib.sha256("\n".join(f"{n} {c}" for n, c in sorted(digests)).encode()).hexdigest()[:16]
    keys = [cache.key(n, c) for n, c in digests]
    scores = {i: {"noisy": cache.get(keys[i])} for i in range(len(pairs))}
    tasks = [((i, "noisy"), p.clean, p.noisy, metrics) for i, p in enumerate(pairs) if scores[i]["noisy"] is None]
    missing = {m: (None, "no enhanced file") for m in metrics}
    for i, p in enumerate(pairs):
        if enhanced[i] is None:
            scores[i]["enhanced"] = missing
        else:
            tasks.append(((i, "enhanced"), p.clean, enhanced[i], metrics))
    for (i, side), result in score_tasks(tasks, _jobs(request), progress).items():
        scores[i][side] = result
        if side == "noisy":
            cache.put(keys[i], result)
    return scores, cache, fingerprint


def _provenance(request: EvalRequest, model) -> dict:
    record = dict(request.provenance)
    if model is not None:
        record.update(model.provenance())
        record["checkpoint_sha256"] = audio.file_digest(model.path)
    else:
        record.update(enhanced_dir=str(request.enhanced), model=record.get("model"))
    return record


def _data_record(request, found, pairs, unmatched, fingerprint) -> dict:
    rates: dict[str, int] = {}
    for p in pairs:
        if p.rate != SAMPLE_RATE:
            rates[str(p.rate)] = rates.get(str(p.rate), 0) + 1
    return {"root": str(request.data), "source": found.source, "pairs": len(pairs), "fingerprint": fingerprint,
            "resampled_from": rates, "extracted": found.extracted, "ignored_folders": found.ignored_folders,
            "unmatched": [{"file": u.path, "side": u.side, "why": u.why} for u in unmatched]}


def _warnings(unmatched, model, resampled: dict) -> list[str]:
    notes = [f"unmatched {u.side} file {u.path}: {u.why}" for u in unmatched]
    notes += [f"{n} noisy file(s) at {rate} Hz resampled to 16 kHz (soxr)" for rate, n in sorted(resampled.items())]
    if model is not None and model.unexpected_keys:
        notes.append(f"checkpoint has {len(model.unexpected_keys)} unexpected key(s), ignored: "
                     + ", ".join(model.unexpected_keys[:5]))
    return notes


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY_FILE).is_file():
        raise UsageError(f"refusing to replace {out}: it is not empty and holds no earlier evaluation")


def _write(out, request, result, rows, pairs, enhanced, metrics) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.part-"))
    try:
        _default_mode(tmp)  # mkdtemp makes it private; a report is an ordinary folder
        outputs = {"per_utterance": CSV_FILE, "summary": SUMMARY_FILE, "report": None, "enhanced_audio": None}
        if request.save_audio:
            outputs["enhanced_audio"] = ENHANCED_DIR + "/"
            for row, p, wave in zip(rows, pairs, enhanced):
                if wave is not None:
                    row["enhanced_file"] = f"{ENHANCED_DIR}/{_safe(p.pair.name)}.wav"
                    audio.write(tmp / row["enhanced_file"], wave, subtype="FLOAT")
        if request.report:
            outputs["report"] = REPORT_FILE
            for i, (p, wave) in enumerate(zip(pairs, enhanced)):
                waves = {"noisy": p.noisy, "enhanced": wave if wave is not None else 0 * p.noisy, "clean": p.clean}
                report.write_media(tmp, i, waves)
        result["outputs"] = outputs
        atomic_write_text(tmp / CSV_FILE, summ.csv_text(rows, metrics))
        atomic_write_json(tmp / SUMMARY_FILE, result)
        if request.report:
            atomic_write_text(tmp / REPORT_FILE, report.render(result, rows))
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _default_mode(folder: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "utterance"


def run_metrics(summary: dict) -> dict:
    """What this evaluation says about the run it scored, in the form any tool reading
    summary.json can record without knowing speech (`kjob runs` does): the enhanced means
    and their improvements, which of them a table shows, and which way each is better."""
    values = {}
    for m in summary["metrics"]:
        values[m] = summary["means"]["enhanced"][m]
        values[f"{m}_delta"] = summary["improvements"][m]
    values = {k: round(v, 6) for k, v in values.items() if v is not None}
    return {"metrics": values, "columns": list(TABLE_COLUMNS),
            "modes": {name: "max" for name in values}}  # every score and improvement: higher is better
