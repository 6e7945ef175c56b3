"""`kjob fetch`: a run's status, log and output listing (and with --output, its files) into
downloads/<kernel>/<version>/, never touching another version's folder.

Files stream to a temporary name and are renamed only when complete and of the announced
size; files whose remote stamp and size are unchanged are not downloaded again; local files
that no longer exist remotely are reported.
"""

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kjob.backends.base import Backend, LogEntry
from kjob.errors import BackendError, UsageError
from kjob.fsutil import atomic_write_json, atomic_write_text, read_json, safe_relative_path
from kjob.ledger import Ledger
from kjob.paths import RUN_METADATA, RUN_METRICS, DownloadPaths
from kjob.runs import Run, run_record
from kjob.watch import refresh
from kjob.workspace import Workspace


@dataclass
class FetchReport:
    run: Run
    folder: Path
    listed: int = 0
    downloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # unsafe names, never written
    gone_remotely: list[str] = field(default_factory=list)  # local copies with no remote file


def log_as_text(entries: list[LogEntry]) -> str:
    """Plain text with each stderr line marked; stdout lines as they are."""
    lines = []
    for entry in entries:
        for line in entry.text.splitlines():
            lines.append(f"[stderr] {line}" if entry.stream == "stderr" else line)
    return "\n".join(lines) + ("\n" if lines else "")


def fetch_run(ws: Workspace, ledger: Ledger, backend: Backend, run: Run, outputs: bool = False,
              pattern: str | None = None) -> FetchReport:
    try:
        wanted = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise UsageError(f"--pattern: {exc}") from None
    run = refresh(ledger, backend, run)
    paths = ws.paths.download(run.kernel, run.backend, run.version)
    report = FetchReport(run, paths.folder)
    listing = backend.list_outputs(run)
    report.listed = len(listing)
    atomic_write_json(paths.status, {**run_record(run), "url": backend.url(run)})
    atomic_write_text(paths.log, log_as_text(backend.log(run)))
    atomic_write_json(paths.listing, [{"name": f.name, "size": f.size} for f in listing])
    if outputs:
        _download_outputs(backend, run, paths, listing, wanted, report)
        metrics = summarize_metrics(paths.output_dir)
        if metrics:
            report.run = ledger.set_metrics(run, {**run.metrics, **metrics})
    return report


def _download_outputs(backend, run, paths: DownloadPaths, listing, wanted, report: FetchReport) -> None:
    record = read_json(paths.fetch_record, {}) or {}
    remote_names = set()
    for file in listing:
        relative = safe_relative_path(file.name)
        if relative is None:
            report.refused.append(file.name)
            continue
        remote_names.add(relative.as_posix())
        if wanted and not wanted.search(file.name):
            continue
        target = paths.output_dir / relative
        known = record.get(relative.as_posix())
        if known and known == {"size": file.size, "stamp": file.stamp} and target.is_file() \
                and (file.size is None or target.stat().st_size == file.size):
            report.unchanged.append(file.name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        try:
            backend.download(run, file, partial)
            size = partial.stat().st_size
            if file.size is not None and size != file.size:
                raise BackendError(f"{file.name}: got {size} bytes, expected {file.size}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        record[relative.as_posix()] = {"size": file.size, "stamp": file.stamp}
        atomic_write_json(paths.fetch_record, record)  # after each file: an interrupted fetch keeps what it got
        report.downloaded.append(file.name)
    if paths.output_dir.is_dir():
        for local in sorted(paths.output_dir.rglob("*")):
            name = local.relative_to(paths.output_dir).as_posix()
            if local.is_file() and not local.name.startswith(".") and name not in remote_names:
                report.gone_remotely.append(name)


def summarize_metrics(output_dir: Path) -> dict:
    """Best validation loss (and its epoch) from a run's metadata.json / metrics.jsonl."""
    summary: dict = {}
    metadata = read_json(output_dir / RUN_METADATA, {}) or {}
    final = metadata.get("final_metrics") or metadata.get("final") or {}
    if isinstance(final, dict):
        for key in ("best_val_loss", "best_epoch", "epochs"):
            if isinstance(final.get(key), (int, float)):
                summary[key] = final[key]
    metrics_file = output_dir / RUN_METRICS
    if "best_val_loss" not in summary and metrics_file.is_file():
        rows = []
        for line in metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        scored = [r for r in rows if isinstance(r.get("val_loss"), (int, float))]
        if scored:
            best = min(scored, key=lambda r: r["val_loss"])
            summary.update(best_val_loss=best["val_loss"], best_epoch=best.get("epoch"), epochs=len(rows))
    return summary
