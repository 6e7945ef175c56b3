"""evaluate(): discover the test pairs, enhance them on the CPU, score both sides in a
process pool (what the score cache holds is not computed again), and write
per_utterance.csv, summary.json and (optionally) the HTML report.

Side effects beyond the report folder: the score cache and the fingerprint cache.
Outputs are written to a temporary folder and renamed into place at the end, so a
failed or interrupted evaluation never leaves half a report, and no evaluation ever
replaces another's report (speechscore.naming).
"""

import datetime
import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kjob.errors import UsageError
from kjob.fsutil import atomic_write_json
from speechscore import (SAMPLE_RATE, SUMMARY_FILE, SUMMARY_FORMAT, audio, conditions, confidence, loading, naming,
                         regressions, summary as summ)
from speechscore.cache import ScoreCache
from speechscore.discovery import discover
from speechscore.metrics import CONVENTIONS, active_metrics
from speechscore.scoring import cpu_count
from speechscore.sides import ModelSource, score_both_sides
from speechscore.writing import write_evaluation

# What a runs table shows of an evaluation by default (summary.json `run_metrics.columns`).
TABLE_COLUMNS = ("pesq_wb", "stoi", "estoi", "si_sdr", "pesq_wb_delta", "si_sdr_delta")


@dataclass(frozen=True)
class EvalRequest:
    data: Path  # a folder, an archive or a CSV manifest
    out: Path | None = None  # an explicit report folder; None: a default name under `reports`
    checkpoint: Path | None = None  # exactly one of checkpoint and enhanced
    model: str | None = None  # architecture for a plain state_dict
    enhanced: Path | None = None  # already-enhanced files, matched by name
    save_audio: bool = False
    pesq_nb: bool = False
    report: bool = False
    jobs: int | None = None  # scoring processes (default: all cores)
    cache_dir: Path | None = None  # scores, fingerprints and extracted archives; None: no cache
    reports: Path | None = None  # where default-named reports go (eval/reports)
    label: str | None = None  # what was evaluated (r3-dpt-local-v3); default from the checkpoint or folder
    replace: bool = False  # an explicit out that holds a report may be replaced
    leakage_check: bool = True  # look for the test pairs in a training split beside them
    provenance: dict = field(default_factory=dict)  # run, version, backend, run_label


def evaluate(request: EvalRequest, progress=None) -> dict:
    """Run one evaluation and return its summary (also written to <folder>/summary.json;
    the returned dict adds "folder", where it was written).

    `progress(stage, done, total)` is called as loading, enhancing and scoring go on."""
    started = time.perf_counter()
    _check(request)
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
        cache = ScoreCache(request.cache_dir / "scores" if request.cache_dir else None, metrics)
        provenance = _provenance(request, model)
        results, enhanced, spent, extra = _score(request, model, pairs, metrics, cache, provenance, progress)
        unmatched += extra
        timing.update(spent)
        mark = time.perf_counter()
        leakage = _leakage(request, found, pairs)
        timing["leakage_s"] = time.perf_counter() - mark
        # Still inside: files extracted from an archive live in `scratch` without a cache.
        fingerprint = _fingerprint(pairs)
        found_conditions, conditions_source = _conditions(request.data, pairs)

    utterances = _utterances(pairs, results, found_conditions)
    rows = [summ.make_row(u, metrics) for u in utterances]
    result = summ.summarize(utterances, rows, metrics)
    result["improvement_intervals"] = confidence.improvement_intervals(rows, metrics)
    data = _data_record(request, found, pairs, unmatched, fingerprint)
    result.update(
        format_version=SUMMARY_FORMAT,
        label=_label(request),
        identity=naming.identity(provenance, fingerprint),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        conventions={**CONVENTIONS, "improvement_intervals": confidence.CONVENTION,
                     "snr_estimated_db": "10 log10(clean energy / (noisy - clean) energy) over the whole utterance",
                     "regressions": regressions.CONVENTION},
        provenance=provenance,
        data=data,
        noisy_cache=cache.stats("noisy"),
        enhanced_cache=cache.stats("enhanced"),
        versions={k: v for k, v in cache.settings.items() if k not in ("metrics", "score_version")},
        jobs=_jobs(request),
        breakdown=({"source": conditions_source, **conditions.breakdown(rows, metrics)} if found_conditions else None),
        leakage=leakage.as_dict() if leakage is not None else None,
    )
    hurts, result["regressions"] = regressions.where_it_hurts(result)
    result["warnings"] = hurts + _warnings(unmatched, model, data, result, request)
    result["run_metrics"] = run_metrics(result)
    mark = time.perf_counter()
    folder = write_evaluation(request, result, rows, pairs, enhanced, metrics)
    timing["write_s"] = time.perf_counter() - mark
    timing["total_s"] = time.perf_counter() - started
    result["timing"] = {k: round(v, 3) for k, v in timing.items()}
    atomic_write_json(folder / SUMMARY_FILE, result)  # again, now with the write time
    return {**result, "folder": str(folder)}


def _check(request: EvalRequest) -> None:
    """Refuse a request that cannot be carried out, before any work."""
    if (request.checkpoint is None) == (request.enhanced is None):
        raise UsageError("evaluate needs exactly one of a checkpoint or a folder of enhanced files")
    if request.out is None and request.reports is None:
        raise UsageError("evaluate needs an output folder or a reports folder for a default name")
    if request.out is not None:
        naming.check_explicit(Path(request.out).resolve(), request.replace)


def _score(request: EvalRequest, model, pairs, metrics, cache: ScoreCache, provenance: dict, progress):
    """Both sides scored: the model's enhancement of each pair (with a model), or the enhanced
    files matched by name. (results, enhanced waves, time spent, enhanced files left unmatched)."""
    if model is not None:
        source = _model_source(model, pairs, provenance, progress)
        results, enhanced, spent = score_both_sides(pairs, metrics, cache, _jobs(request), model=source,
                                                    need_waves=request.report or request.save_audio,
                                                    progress=progress)
        return results, enhanced, spent, []
    waves, extra = loading.load_enhanced(Path(request.enhanced), pairs)
    results, enhanced, spent = score_both_sides(pairs, metrics, cache, _jobs(request), enhanced_waves=waves,
                                                progress=progress)
    return results, enhanced, spent, extra


def _utterances(pairs, results, found_conditions: dict) -> list:
    """Each pair's scores on both sides, its lag, its SI-SDR ceiling and its conditions."""
    return [summ.Utterance(p.pair.name, str(p.pair.noisy), str(p.pair.clean), p.noisy.size / SAMPLE_RATE,
                           p.rate, {s: results[i][s]["scores"] for s in summ.SIDES}, None,
                           {s: results[i][s]["lag"] for s in summ.SIDES},
                           {s: results[i][s]["si_sdr_ceiling"] for s in summ.SIDES},
                           {**found_conditions.get(p.pair.name, {}),
                            "snr_estimated_db": conditions.estimate_snr(p.clean, p.noisy)})
            for i, p in enumerate(pairs)]


def _label(request: EvalRequest) -> str:
    """What was evaluated: the request's label, else named after the checkpoint or the folder."""
    if request.label:
        return request.label
    if request.checkpoint is not None:
        return naming.checkpoint_base(request.checkpoint)
    return naming.enhanced_base(request.enhanced)


def _jobs(request: EvalRequest) -> int:
    return max(1, request.jobs or cpu_count())


def _model_source(model, pairs, provenance: dict, progress) -> ModelSource:
    import torch

    from speechscore.fastpath import fast_inference_model
    from speechscore.model import CHUNK_SECONDS, OVERLAP_SECONDS, enhance_all

    runnable, path = fast_inference_model(model.model)
    provenance["inference"] = path

    def enhance(indices):
        waves = enhance_all(runnable, [pairs[i].noisy for i in indices], [pairs[i].pair.name for i in indices],
                            progress=progress)
        return dict(zip(indices, waves))

    settings = {"model": model.name, "config": model.config, "inference": path, "chunk_seconds": CHUNK_SECONDS,
                "overlap_seconds": OVERLAP_SECONDS, "torch": torch.__version__}
    return ModelSource(provenance["checkpoint_sha256"], settings, enhance)


def _fingerprint(pairs) -> str:
    """The test set's identity: a hash of its pairs' file contents (order does not matter)."""
    digests = sorted(f"{audio.file_digest(p.pair.noisy)} {audio.file_digest(p.pair.clean)}" for p in pairs)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def _conditions(data: Path, pairs) -> tuple[dict, str | None]:
    """Noise type and SNR per pair name, from a manifest or else from the file names."""
    root = Path(data)
    relative = {}
    for p in pairs:
        try:
            relative[p.pair.name] = p.pair.noisy.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            relative[p.pair.name] = p.pair.noisy.name
    manifest = conditions.read_manifest(root)
    if manifest is not None:
        found = conditions.from_manifest(manifest[0], relative)
        if found:
            return found, manifest[1]
    found = conditions.from_names(relative)
    return found, ("file names" if found else None)


def _leakage(request: EvalRequest, found, pairs):
    """The fingerprint audit of the test pairs against the training split beside them."""
    if not request.leakage_check or not found.train_files:
        return None
    from speechscore.leakage_files import audit_beside

    cache = request.cache_dir / "fingerprints" if request.cache_dir else None
    root = Path(request.data)
    try:
        return audit_beside(found.train_files, root if root.is_dir() else root.parent,
                            [p.pair.clean for p in pairs], [p.pair.noisy for p in pairs], cache)
    except audio.AudioError as exc:
        # A broken training file must not stop the evaluation of the test set.
        from speechscore.leakage import LeakageResult

        return LeakageResult(0, len(pairs), skipped=f"not checked: {exc}")


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
    downmixed = {side: [str(getattr(p.pair, side)) if side != "enhanced" else p.pair.name
                        for p in pairs if p.channels.get(side, 1) > 1] for side in ("noisy", "clean", "enhanced")}
    return {"root": str(request.data), "source": found.source, "pairs": len(pairs), "fingerprint": fingerprint,
            "resampled_from": rates, "extracted": found.extracted, "ignored_folders": found.ignored_folders,
            "unmatched": [{"file": u.path, "side": u.side, "why": u.why} for u in unmatched],
            "averaged_to_mono": {side: {"count": len(files), "files": files[:20]} for side, files in downmixed.items()}}


def _warnings(unmatched, model, data: dict, result: dict, request) -> list[str]:
    notes = []
    if model is not None:
        epochs_run = _epochs_run(model.path)
        note = regressions.few_epochs_note(model.epoch, epochs_run)
        if note:
            notes.append(note)
    for side, found in data["averaged_to_mono"].items():
        if found["count"]:
            example = f"the one for {found['files'][0]}" if side == "enhanced" else found["files"][0]
            notes.append(f"{found['count']} {side} file(s) had more than one channel (e.g. {example}): averaged to "
                         "mono before scoring; check that the channels hold one recording")
    notes += [f"unmatched {u.side} file {u.path}: {u.why}" for u in unmatched]
    notes += [f"{n} noisy file(s) at {rate} Hz resampled to 16 kHz (soxr)" for rate, n in sorted(data["resampled_from"].items())]
    if model is not None and model.unexpected_keys:
        notes.append(f"checkpoint has {len(model.unexpected_keys)} unexpected key(s), ignored: "
                     + ", ".join(model.unexpected_keys[:5]))
    count = result["count"]
    for side, what in (("enhanced", "enhanced outputs"), ("noisy", "noisy inputs")):
        lags = result["lags"][side]
        if lags["nonzero"]:
            common = max(lags["by_samples"].items(), key=lambda kv: kv[1])
            notes.append(f"{lags['nonzero']} of {count} {what} lag their clean reference (by {common[0]} samples = "
                         f"{1000 * int(common[0]) / SAMPLE_RATE:.2f} ms in {common[1]} of them): "
                         "SI-SDR punishes a lag that PESQ and STOI hardly notice; see lag_* in per_utterance.csv")
    ceiling = result.get("si_sdr_ceiling")
    if ceiling and (ceiling["enhanced"]["count"] or ceiling["noisy"]["count"]):
        for side in ("enhanced", "noisy"):
            if ceiling[side]["count"]:
                without = ceiling[side]["mean_without"]
                notes.append(f"{ceiling[side]['count']} {side} SI-SDR value(s) at the numerical ceiling (output equal "
                             f"to the reference, about 100 dB): mean {_db(result['means'][side]['si_sdr'])} with them, "
                             f"{_db(without)} without")
    leakage = result.get("leakage")
    if leakage and not leakage["clean"]:
        first = leakage["findings"][0]
        notes.append(f"leakage: {len(leakage['findings'])} test file(s) share audio with the training split beside "
                     f"them ({first['test']} ~ {first['train']}: {first['evidence']}); "
                     f"`kjob leakage --train {request.data} --test {request.data}` lists them")
    elif leakage and leakage["skipped"]:
        notes.append(f"leakage check: {leakage['skipped']}; run `kjob leakage` on the splits")
    return notes


def _epochs_run(checkpoint: Path) -> int | None:
    """The epochs the run trained, from the training record (metadata.json) beside the
    checkpoint, when there is one; None otherwise or when it cannot be read."""
    import json

    try:
        final = json.loads((Path(checkpoint).parent / "metadata.json").read_text(encoding="utf-8")).get("final")
        value = final.get("epochs_run") if isinstance(final, dict) else None
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _db(value) -> str:
    return "-" if value is None else f"{value:.2f} dB"


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
