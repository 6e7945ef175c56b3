"""Per-step series from the files training projects already write, read without touching
their code: one reader per source, each giving {metric: [(step, epoch or None, value), ...]}.

    history      metrics.jsonl (one JSON object per line), anywhere under the outputs
    tensorboard  TensorBoard event files (events.out.tfevents.*), anywhere under the outputs:
                 each scalar tag, read with TensorBoard's own EventAccumulator (the `metrics`
                 extra; without it, one note naming the extra); an `epoch` tag (Lightning's,
                 or `train/epoch`, the HF Trainer's) is the other tags' epoch axis
    csv          metrics.csv as Lightning's CSVLogger writes it (lightning_logs/version_N/:
                 columns epoch, step and one per metric, sparse rows); the newest version_N
    trainer      Hugging Face Trainer's trainer_state.json `log_history` (the output folder's,
                 or the newest checkpoint-*/'s: the one with the most steps)
    log          the run's printed lines, through a recipe's `[metrics] log` patterns: every
                 match is one point of each named group's metric (`step`, `epoch`: its axes)

A `step` or `epoch` column is an axis, never a metric. Where several files of one source name a
metric (two run folders of TensorBoard), each is kept under its folder's path: `runs/a/loss`.
"""

import csv
import json
import math
import re
from pathlib import Path

from kjob.paths import RUN_METRICS

AXES = ("step", "epoch")
METRICS_EXTRA = "pip install 'kjob[metrics]'"
EVENT_FILES = "events.out.tfevents.*"
CSV_LOG = "metrics.csv"
TRAINER_STATE = "trainer_state.json"
_MAX_FILES = 200  # of one source: a checkpoint folder per step stays cheap to read
_VERSION = re.compile(r"version_(\d+)")


def _number(value):
    """A finite number from a JSON number or a text (a CSV cell, a printed group); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    return None


def _json_number(value):
    """A finite JSON number (a text is no number in JSON)."""
    return None if isinstance(value, str) else _number(value)


def _leaves(row: dict, prefix: str = "") -> dict:
    """Every finite number of a row, nested keys joined with dots, axes left out at the top."""
    found = {}
    for key, item in row.items():
        if not prefix and key in AXES:
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict):
            found.update(_leaves(item, name))
        elif (value := _json_number(item)) is not None:
            found[name] = value
    return found


def _files(output_dir: Path, pattern: str) -> list[Path]:
    """Files named `pattern` under output_dir (not through links), the shallowest first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.rglob(pattern) if p.is_file() and not p.is_symlink()]
    return sorted(found, key=lambda p: (len(p.relative_to(output_dir).parts), str(p)))[:_MAX_FILES]


def _combined(output_dir: Path, parts: list[tuple[Path, dict]]) -> dict:
    """One series per name from several folders' series: a name that only one folder has keeps
    it; a name several have is kept under each folder's path (the output folder's own: plain)."""
    owners: dict[str, int] = {}
    for _, series in parts:
        for name in series:
            owners[name] = owners.get(name, 0) + 1
    found: dict = {}
    for folder, series in parts:
        prefix = folder.relative_to(output_dir).as_posix() if folder != output_dir else ""
        for name, points in series.items():
            key = f"{prefix}/{name}" if owners[name] > 1 and prefix else name
            found.setdefault(key, points)
    return found


# -- metrics.jsonl ----------------------------------------------------------------------------


def jsonl_lines(lines) -> dict:
    """{metric: [(step, epoch, value)]} of metrics.jsonl lines; a row without `step` is its
    1-based position."""
    series: dict[str, list[tuple]] = {}
    position = 0
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a half-written last line, or a stray print
        if not isinstance(row, dict):
            continue
        position += 1
        step, epoch = _json_number(row.get("step")), _json_number(row.get("epoch"))
        step = position if step is None else step
        for name, value in _leaves(row).items():
            series.setdefault(name, []).append((step, epoch, value))
    return series


def jsonl_files(output_dir: Path) -> list[Path]:
    return _files(output_dir, RUN_METRICS)


def jsonl_series(output_dir: Path) -> dict:
    parts = []
    for path in jsonl_files(output_dir):
        with open(path, encoding="utf-8", errors="replace") as handle:
            parts.append((path.parent, jsonl_lines(handle)))
    return _combined(output_dir, parts)


# -- TensorBoard ------------------------------------------------------------------------------


def event_folders(output_dir: Path) -> list[Path]:
    return list(dict.fromkeys(p.parent for p in _files(output_dir, EVENT_FILES)))


def tensorboard_series(output_dir: Path) -> dict:
    """Each scalar tag of the event files (TensorBoard's EventAccumulator, one per folder, as
    TensorBoard reads a run): simple values and TF2 scalar tensors. Raises ImportError without
    tensorboard."""
    folders = event_folders(output_dir)
    if not folders:
        return {}
    import numpy
    from tensorboard.backend.event_processing import event_accumulator as ea

    def shortest(value) -> float:  # events hold float32: 1.7, not 1.7000000476837158
        return float(str(numpy.float32(value)))

    parts = []
    for folder in folders:
        accumulator = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
        try:
            accumulator.Reload()
        except Exception:  # noqa: BLE001 - a truncated or foreign file: TensorBoard too skips it
            continue
        tags = accumulator.Tags()
        series: dict[str, list[tuple]] = {}
        for tag in tags.get("scalars", []):
            points = [(e.step, None, shortest(e.value)) for e in accumulator.Scalars(tag)
                      if _number(e.value) is not None]
            if points:
                series[tag] = points
        for tag in tags.get("tensors", []):
            if tag in series or accumulator.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue
            from tensorboard.util import tensor_util

            points = []
            for event in accumulator.Tensors(tag):
                value = _number(float(tensor_util.make_ndarray(event.tensor_proto).item()))
                if value is not None:
                    points.append((event.step, None, shortest(value)))
            if points:
                series[tag] = points
        parts.append((folder, _axes_apart(series)))
    return _combined(output_dir, parts)


def _axes_apart(series: dict) -> dict:
    """Scalar tags that are axes (`epoch`, as Lightning's TensorBoardLogger writes it beside every
    metric; `train/epoch`, as Hugging Face's TensorBoard callback does) left out of the metrics:
    an `epoch` tag's value at a step is the epoch of the other tags' points at that step."""
    axes = {name for name in series if name.rsplit("/", 1)[-1] in AXES}
    epochs = {}
    for name in sorted(axes, key=lambda n: n != "epoch"):  # a plain `epoch` tag first
        if name.rsplit("/", 1)[-1] == "epoch":
            for step, _, value in series[name]:
                epochs.setdefault(step, value)
    return {name: [(step, epochs.get(step), value) for step, _, value in points]
            for name, points in series.items() if name not in axes}


# -- Lightning's CSVLogger --------------------------------------------------------------------


def csv_series(output_dir: Path) -> dict:
    """metrics.csv files (the newest version_N of each logger folder): each column other than
    `epoch` and `step` with a number in a row is one point."""
    newest: dict[Path, tuple[int, Path]] = {}
    for path in _files(output_dir, CSV_LOG):
        match = _VERSION.fullmatch(path.parent.name)
        logger = path.parent.parent if match else path.parent
        number = int(match.group(1)) if match else -1
        if logger not in newest or number > newest[logger][0]:
            newest[logger] = (number, path)
    parts = []
    for _, path in newest.values():
        series: dict[str, list[tuple]] = {}
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            for position, row in enumerate(csv.DictReader(handle), 1):
                step, epoch = _number(row.get("step") or ""), _number(row.get("epoch") or "")
                for name, text in row.items():
                    if name is None or name in AXES or not isinstance(text, str):
                        continue
                    value = _number(text) if text.strip() else None
                    if value is not None:
                        series.setdefault(name, []).append((position if step is None else step, epoch, value))
        parts.append((path.parent, series))
    return _combined(output_dir, parts)


# -- Hugging Face Trainer ---------------------------------------------------------------------


def trainer_series(output_dir: Path) -> dict:
    """The newest trainer_state.json's `log_history` (most `global_step`; the output folder's own
    before a checkpoint's of as many): each number of each entry, at its `step` and `epoch`."""
    best, history = None, None
    for path in _files(output_dir, TRAINER_STATE):
        try:
            state = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except (json.JSONDecodeError, OSError):
            continue
        if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
            continue
        steps = _json_number(state.get("global_step")) or 0
        if best is None or steps > best:  # the shallowest first: a checkpoint must have more
            best, history = steps, state["log_history"]
    series: dict[str, list[tuple]] = {}
    for position, entry in enumerate(history or [], 1):
        if not isinstance(entry, dict):
            continue
        step, epoch = _json_number(entry.get("step")), _json_number(entry.get("epoch"))
        for name, value in _leaves(entry).items():
            series.setdefault(name, []).append((position if step is None else step, epoch, value))
    return series


# -- printed lines ----------------------------------------------------------------------------


def compile_patterns(patterns) -> list[re.Pattern]:
    """The `[metrics] log` patterns; a re.error for one that does not compile."""
    return [re.compile(p) for p in patterns]


def log_series(text: str, patterns) -> dict:
    """Every match of each pattern in each line of the log: one point of each named group's
    metric (groups `step` and `epoch`: the point's axes; else the metric's own count)."""
    series: dict[str, list[tuple]] = {}
    compiled = compile_patterns(patterns)
    for line in text.splitlines():
        for pattern in compiled:
            for match in pattern.finditer(line):
                groups = match.groupdict()
                step, epoch = _number(groups.get("step") or ""), _number(groups.get("epoch") or "")
                for name, raw in groups.items():
                    if name in AXES or raw is None or (value := _number(raw)) is None:
                        continue
                    points = series.setdefault(name, [])
                    points.append((len(points) + 1 if step is None else step, epoch, value))
    return series
