"""`kjob board` opened in a real headless Chromium (over its DevTools pipe, tests/cdp_pipe.py).

The project (tests/board_project.py) makes real local runs through the real CLI: a two-stage
campaign of 7 members, a run whose message, note, parameter and metric name are hostile
markup, a failed run, one whose fetched files were deleted and one archived. The board is
checked from the DOM: every run listed, curves drawn with a point per step, sorting and
filtering, the campaign view and its parameter plots, the run page, hostile text shown as
text, no network request (Chromium's proxy is a local socket that records any connection), and
a board that follows the ledger without a reload. Screenshots at 1,400 x 900 are kept in
/tmp/board-shots/.
"""

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from board_project import HOSTILE_LABEL, HOSTILE_MESSAGE, HOSTILE_METRIC, HOSTILE_NOTE, Project
from cdp_pipe import CHROMIUM, Browser
from kjob.runs.ledger import Ledger

SHOTS = Path("/tmp/board-shots")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")


class Recorder:
    """A TCP socket standing in for a proxy: every connection Chromium opens to reach the
    network lands here, is recorded and closed."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.seen: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(1024))
                except OSError:
                    self.seen.append(b"")


class BoardSnapshots:
    """Reads data.js over and over from a thread while a sweep runs: each distinct version
    the page would have seen, as {run ref: status}."""

    def __init__(self, path: Path):
        self.path, self.snapshots, self.done = path, [], threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        last = None
        while not self.done.wait(0.02):
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError:
                continue
            if text != last:
                last = text
                data = json.loads(text[len("kjobBoard("):-3])
                self.snapshots.append({r["ref"]: r["status"] for r in data["runs"]})

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The project, its runs, its board, and a browser on it."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("board-project")
        mp.chdir(root)
        mp.delenv("KJOB_OWNER", raising=False)
        project = Project(root)
        with BoardSnapshots(root / ".kjob/board/data.js") as seen:
            project.fill("--board")  # the campaign swept with the board kept fresh
        project.snapshots = seen.snapshots
        result = project.kjob("board")
        assert result.exit_code == 0, result.output
        assert "board of 10 run(s), 1 campaign(s): .kjob/board/index.html" in result.stdout
        recorder = Recorder()
        browser = Browser(tmp_path_factory.mktemp("profile"), proxy=f"http://127.0.0.1:{recorder.port}")
        try:
            yield project, browser, recorder
        finally:
            browser.close()
            recorder.server.close()


def runs_of(project) -> list:
    with Ledger(project.root / ".kjob/ledger.sqlite3") as ledger:
        return ledger.runs()


def show(browser, project, fragment: str, ready: str = "true"):
    """The board at `fragment`, drawn (its data loaded and `ready` true)."""
    url = (project.root / ".kjob/board/index.html").as_uri() + "#" + fragment
    if browser.js("location.href").split("#")[0] == url.split("#")[0]:
        browser.js(f"location.hash = {json.dumps(fragment)}")
    else:
        browser.open(url)
    browser.wait(f"!!(document.body.dataset.view && ({ready}))")


def table_refs(browser) -> list[str]:
    return browser.js("[...document.querySelectorAll('#runs tbody tr')].map(r => r.dataset.ref)")


def test_every_run_is_listed_with_its_status_and_marks(site):
    project, browser, _ = site
    show(browser, project, "view=runs", "document.querySelector('#runs')")
    runs = runs_of(project)
    assert len(runs) == 10
    assert sorted(table_refs(browser)) == sorted(r.ref for r in runs)
    assert table_refs(browser) == [r.ref for r in runs]  # newest first, as kjob runs lists them
    rows = browser.js("Object.fromEntries([...document.querySelectorAll('#runs tbody tr')].map(r => "
                      "[r.dataset.ref, r.innerText]))")
    assert "error" in rows["snd v9 (local)"] and "complete" in rows["snd v8 (local)"]
    assert "missing" in rows["snd v10 (local)"]  # fetched, then deleted by hand
    assert "archived" in rows["snd v1 (local)"]
    headers = browser.js("[...document.querySelectorAll('#runs th')].map(h => h.textContent)")
    for name in ("status", "duration", "lr", "hidden", "val_acc", "val_loss.best", "campaign", "tags"):
        assert name in headers
    assert browser.js("document.querySelector('#best').textContent").startswith("Best by val_acc (highest): snd v8")


def test_hostile_text_stays_text(site):
    project, browser, _ = site
    data = (project.root / ".kjob/board/data.js").read_text(encoding="utf-8")
    body = data[len("kjobBoard("):-3]
    assert "<" not in body and ">" not in body and "\u2028" not in body  # nothing can end the script
    assert json.loads(body)["runs"][2]["message"] == HOSTILE_MESSAGE  # ... and the text is intact
    hostile = next(r for r in runs_of(project) if r.version == 8)
    for fragment in ("view=runs", "view=curves&metric=" + HOSTILE_METRIC.replace("=", "%3D"),
                     f"view=run&run={hostile.id}"):
        show(browser, project, fragment, "document.querySelector('#runs, #curves svg, #run-log')")
        assert browser.js("document.querySelectorAll('img, main script, iframe, object').length") == 0
        assert browser.js("window.pwned") is None
    notes = browser.js("document.querySelector('#run-notes').innerText")
    assert HOSTILE_NOTE in notes and HOSTILE_MESSAGE in notes
    assert HOSTILE_LABEL.strip("\u2028") in browser.js("document.querySelector('#view-run').innerText")
    show(browser, project, "view=curves", "document.querySelector('#metric option')")
    assert HOSTILE_METRIC in browser.js("[...document.querySelectorAll('#metric option')].map(o => o.textContent)")


def test_curves_are_drawn_for_every_plotted_run(site):
    project, browser, _ = site
    show(browser, project, "view=curves", "document.querySelectorAll('#curves path.series').length >= 7")
    paths = browser.js("[...document.querySelectorAll('#curves path.series')].map(p => "
                       "[+p.dataset.run, +p.dataset.points, (p.getAttribute('d').match(/[ML]/g) || []).length])")
    by_id = {r.id: r for r in runs_of(project)}
    # the best 8 runs by val_acc with files here (v1 archived, v10's files deleted): v8, v4, v7, v3, v6, v5, v2
    # and v9, which failed at epoch 3 and whose outputs (a failed run's) were not fetched: no curve
    plotted = sorted(by_id[run_id].version for run_id, _, _ in paths)
    assert plotted == [2, 3, 4, 5, 6, 7, 8]
    for run_id, points, commands in paths:
        expected = 12 if by_id[run_id].version == 8 else 8  # epochs: 12 for single runs, 8 screened
        assert points == commands == expected
    assert browser.js("document.querySelector('#metric').value") == "val_loss"  # a loss first
    ticks = browser.js("[...document.querySelectorAll('#curves svg text')].map(t => t.textContent)")
    assert "step" in ticks and "val_loss" in ticks and "0.4" in ticks and "200" in ticks  # nice ticks
    assert browser.js("document.querySelectorAll('#legend div[data-run]').length") == 7
    best = next(r for r in by_id.values() if r.version == 8)  # the best by val_acc: on top, thicker, marked
    assert browser.js("[...document.querySelectorAll('#curves path.series')].pop().dataset.run") == str(best.id)
    assert browser.js("document.querySelector('#curves path.series.best').dataset.run") == str(best.id)
    assert "best val_acc" in browser.js(f"document.querySelector('#legend div[data-run=\"{best.id}\"]').textContent")
    assert browser.js("document.querySelector('#plotted').textContent").startswith("8 run(s) chosen, 7 with val_loss")
    show(browser, project, "view=curves&metric=val_acc&x=epoch",
         "document.querySelector('#x').value === 'epoch' && document.querySelectorAll('#curves path.series').length")
    ticks = browser.js("[...document.querySelectorAll('#curves svg text')].map(t => t.textContent)")
    assert "epoch" in ticks and "val_acc" in ticks
    # the hover readout names each run's value at the pointer
    browser.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 500, "y": 300}, session=True)
    readout = browser.wait("!document.querySelector('.readout').hidden && document.querySelector('.readout').innerText")
    assert "val_acc at epoch" in readout and "snd v8 (local)" in readout


def test_sorting_and_filtering_change_the_order(site):
    project, browser, _ = site
    runs = runs_of(project)
    show(browser, project, "view=runs&sort=val_acc", "document.querySelector('#runs')")
    best_first = table_refs(browser)
    ranked = sorted([r for r in runs if "val_acc" in r.metrics], key=lambda r: -r.metrics["val_acc"])
    assert best_first[:len(ranked)] == [r.ref for r in ranked]  # ties in the table's (newest first) order
    assert best_first[-1] == "snd v9 (local)"  # no val_acc: last, as kjob runs puts it
    show(browser, project, "view=runs&sort=%2Bval_acc", "document.querySelector('th.sorted-asc')")
    worst_first = table_refs(browser)
    assert worst_first != best_first and worst_first[0] == ranked[-1].ref
    # a click on a header sorts too
    browser.js("document.querySelector('th[data-sort=\"param.lr\"]').click()")
    browser.wait("location.hash.includes('sort=%2Bparam.lr')")
    lrs = [runs_of_ref(runs, ref).parameters["lr"] for ref in table_refs(browser)]
    assert lrs == sorted(lrs)
    show(browser, project, "view=runs&where=lr%3C0.05%3B%20status%3Dcomplete", "document.querySelector('#count')")
    kept = {r.ref for r in runs if r.parameters["lr"] < 0.05 and r.state.status == "complete"}
    assert set(table_refs(browser)) == kept and len(kept) == 7
    show(browser, project, "view=runs&where=tags%3Dbaseline", "document.querySelector('#count')")
    assert table_refs(browser) == ["snd v8 (local)"]
    show(browser, project, "view=runs&where=nonsense%3E1", "document.querySelector('#where-error')")
    assert "no run has a metric 'nonsense'" in browser.js("document.querySelector('#where-error').textContent")


@pytest.mark.parametrize("condition", ["val_acc>0.8", "val_loss<0.4", "lr<=0.01", "status!=complete", "tags=baseline",
                                       "hidden=32", "param.hidden!=8", "label=plain", "hostile=true", "stage=screen",
                                       "created>2000-01-01", "archived=true", "duration>=0", "note!=x"])
def test_the_page_filters_as_kjob_runs_does(site, condition):
    """The page's --where and kjob's own query code (kjob.runs.query) keep the same runs."""
    from urllib.parse import quote

    from kjob.runs.query import RunQuery, select_runs
    from kjob.workspace import find_workspace

    project, browser, _ = site
    expected = {r.ref for r in select_runs(find_workspace(project.root), RunQuery(where=(condition,), archived=True)).runs}
    show(browser, project, f"view=runs&where={quote(condition)}", "document.querySelector('#count')")
    assert set(table_refs(browser)) == expected, condition


def runs_of_ref(runs, ref):
    return next(r for r in runs if r.ref == ref)


def test_the_command_selects_runs_as_kjob_runs_does(site, tmp_path):
    project, _, _ = site
    result = project.kjob("board", "--out", str(tmp_path / "b"), "--where", "val_acc>0.8", "--campaign", "grid")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "b/data.js").read_text()[len("kjobBoard("):-3])
    assert sorted(r["version"] for r in data["runs"]) == [3, 4, 7]
    assert data["query"] == {"kernel": None, "campaign": "grid", "where": ["val_acc>0.8"]}
    result = project.kjob("board", "--out", str(tmp_path / "c"), "--where", "nothing<1")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "no run has a metric 'nothing'" in result.output


def test_the_campaign_view_shows_stages_gates_parameter_plots_and_the_leaderboard(site):
    project, browser, _ = site
    show(browser, project, "view=campaigns", "document.querySelector('#leaderboard')")
    stages = browser.js("Object.fromEntries([...document.querySelectorAll('#stages .stage')].map(s => "
                        "[s.dataset.stage, s.querySelectorAll('tbody tr').length]))")
    assert stages == {"screen": 6, "full": 1}
    why = browser.js("document.querySelector('.stage[data-stage=full] .why').textContent")
    assert "gate val_acc of screen's best >= 0.5 holds" in why
    plots = browser.js("Object.fromEntries([...document.querySelectorAll('#param-plots svg')].map(s => "
                       "[s.dataset.param, s.querySelectorAll('circle.point').length]))")
    assert plots == {"lr": 7, "hidden": 7}
    board = browser.js("[...document.querySelectorAll('#leaderboard tbody tr')].map(r => r.innerText)")
    assert len(board) == 7 and "lr=0.01" in board[0] and "hidden=32" in board[0]
    best = browser.js("document.querySelector('#campaign-best').textContent")
    assert best.startswith("Best member by val_acc (highest): screen[hidden=32 lr=0.01]") and "snd v4 (local)" in best
    members = {r.id for r in runs_of(project) if r.campaign == "grid" and r.version != 1}  # v1: archived
    curves = browser.js("document.querySelector('#campaign-curves').getAttribute('href')")
    assert set(map(int, curves.split("runs=")[1].split(","))) == members
    assert browser.js("[...document.querySelectorAll('#stages .stage h3 .status')].map(s => s.textContent)") == \
        ["complete", "complete"]


def test_a_run_page_has_parameters_provenance_log_and_outputs(site):
    project, browser, _ = site
    runs = {r.version: r for r in runs_of(project)}
    show(browser, project, f"view=run&run={runs[8].id}", "document.querySelector('#run-log').textContent.includes('epoch')")
    text = browser.js("document.querySelector('#view-run').innerText")
    assert runs[8].notebook_sha256[:12] in text and "src/snd/train.py" in text
    assert browser.js(f"!!document.querySelector('#view-run [title=\"{runs[8].notebook_sha256}\"]')")  # whole
    assert "epoch 12/12 val_acc" in browser.js("document.querySelector('#run-log').textContent")
    links = browser.js("[...document.querySelectorAll('#view-run a')].map(a => a.getAttribute('href'))")
    assert "../../downloads/snd/local-v8/output/metrics.jsonl" in links
    assert browser.js("document.querySelectorAll('#run-curve path.series').length") == 1
    show(browser, project, f"view=run&run={runs[10].id}", "document.querySelector('#run-files')")
    assert "deleted" in browser.js("document.querySelector('#run-files').textContent")
    show(browser, project, f"view=run&run={runs[9].id}", "document.querySelector('#run-log').textContent.includes('epoch')")
    assert "asked to fail at epoch 3" in browser.js("document.querySelector('#view-run').innerText")


def test_the_page_makes_no_network_request(site):
    project, browser, recorder = site
    for fragment in ("view=runs", "view=curves", "view=campaigns"):
        show(browser, project, fragment, "document.querySelector('#runs, #curves svg, #leaderboard')")
    time.sleep(3.5)  # a poll of data.js too
    requests = browser.requests()
    assert any("/data.js?t=" in url for url in requests)  # it polls
    assert requests and all(url.startswith("file://") for url in requests), [u for u in requests if "file:" not in u]
    # Chromium itself still calls its update and account services whatever its flags say: those
    # hosts are not the page's (its own requests, above, are all file://); anything else is
    own = (b"update.googleapis.com", b"accounts.google.com", b"clients2.google.com")
    assert [s.split(b"\r\n")[0] for s in recorder.seen if not any(host in s.split(b"\r\n")[0] for host in own)] == []
    # the page's policy would refuse a request its code tried
    assert "connect-src 'none'" in (project.root / ".kjob/board/index.html").read_text()


def test_it_fits_1400_px_light_and_dark_and_screenshots(site):
    project, browser, _ = site
    SHOTS.mkdir(exist_ok=True)
    views = {"table": ("view=runs", "document.querySelector('#runs')"),
             "curves": ("view=curves", "document.querySelectorAll('#curves path.series').length >= 7"),
             "campaign": ("view=campaigns", "document.querySelector('#param-plots')")}
    for name, (fragment, ready) in views.items():
        show(browser, project, fragment, ready)
        assert browser.js("document.documentElement.scrollWidth") <= 1400
        if name == "table":  # the table itself fits: no column hidden behind a scroll
            assert browser.js("document.querySelector('#runs').scrollWidth <= "
                              "document.querySelector('.table-wrap').clientWidth")
        shot = browser.screenshot(SHOTS / f"board-{name}.png")
        assert shot.read_bytes()[16:24] == (1400).to_bytes(4, "big") + (900).to_bytes(4, "big")
    browser.call("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
                 session=True)
    try:
        show(browser, project, "view=curves", "document.querySelectorAll('#curves path.series').length >= 7")
        assert browser.js("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 28)"
        browser.screenshot(SHOTS / "board-curves-dark.png")
    finally:
        browser.call("Emulation.setEmulatedMedia", {"features": []}, session=True)
    assert browser.js("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"


def test_the_open_page_follows_the_ledger_without_a_reload(site):
    project, browser, _ = site
    runs = {r.version: r for r in runs_of(project)}
    show(browser, project, "view=runs", "document.querySelector('#runs')")
    browser.js("window.sameLoad = 1")
    with Ledger(project.root / ".kjob/ledger.sqlite3") as ledger:
        ledger.set_note(runs[4], "seen on the open page")
    assert project.kjob("board").exit_code == 0
    browser.wait("document.querySelector('#runs').innerText.includes('seen on the open page')", timeout=20)
    assert browser.js("window.sameLoad") == 1


def test_watch_rewrites_the_data_when_the_ledger_changes(site, tmp_path):
    project, _, _ = site
    out = tmp_path / "watched"
    kjob = Path(sys.executable).with_name("kjob")
    process = subprocess.Popen([str(kjob), "board", "--watch", "--out", str(out)], cwd=project.root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "data.js").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        before = (out / "data.js").read_text()
        run = next(r for r in runs_of(project) if r.version == 5)
        with Ledger(project.root / ".kjob/ledger.sqlite3") as ledger:
            ledger.set_note(run, "written while watched")
        while "written while watched" not in (out / "data.js").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        after = (out / "data.js").read_text()
        assert "written while watched" in after and after != before
        assert re.fullmatch(r"kjobBoard\(.*\);\n", after, re.S)  # whole: written atomically
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "watching the ledger" in err


def test_the_board_imports_nothing_heavy():
    code = "import sys, kjob.board, kjob.cli.board; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_local_run_in_flight_shows_its_curve_so_far(site, tmp_path, monkeypatch):
    _, browser, _ = site
    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path)
    result = project.kjob("push", "snd", "-p", "epochs=12", "-p", "pause=60")
    assert result.exit_code == 0, result.output
    try:
        sandbox = next((tmp_path / ".kjob/local/snd").glob("v1")) / "working" / "metrics.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (sandbox.is_file() and len(sandbox.read_text().splitlines()) >= 6):
            time.sleep(0.1)
        assert project.kjob("board").exit_code == 0
        data = json.loads((tmp_path / ".kjob/board/data.js").read_text()[len("kjobBoard("):-3])
        [row] = data["runs"]
        assert row["files"] == "live" and row["detail"] and row["status"] in ("running", "queued")
        detail = (tmp_path / f".kjob/board/runs/{row['id']}.js").read_text()
        series = json.loads(detail[len(f"kjobRun({row['id']},"):-3])["series"]
        assert [p[1] for p in series["val_loss"]] == [1, 2, 3, 4, 5, 6]  # the epochs so far
        show(browser, project, f"view=run&run={row['id']}", "document.querySelector('#run-curve path.series')")
        assert browser.js("document.querySelector('#run-curve path.series').dataset.points") == "6"
        assert "in flight" in browser.js("document.querySelector('#run-files').textContent")
        assert "epoch 6/12" in browser.js("document.querySelector('#run-log').textContent")
    finally:
        assert project.kjob("cancel", "snd").exit_code == 0


def test_sweep_board_keeps_the_board_fresh_while_members_run(site):
    """`kjob sweep grid --board` (the fixture's sweep): the board was written while members were
    in flight, and its last version, before any `kjob board`, lists every member complete."""
    project, _, _ = site
    seen = project.snapshots
    members = {r.ref for r in runs_of(project) if r.campaign == "grid"}
    assert len(members) == 7 and len(seen) >= 2
    assert any(status in ("queued", "running", "submitting") for snap in seen[:-1] for status in snap.values())
    assert seen[-1] == {ref: "complete" for ref in members}
    result = project.kjob("sweep", "grid", "--status", "--board")  # written once, and where it is said
    assert result.exit_code == 0, result.output
    assert "board: .kjob/board/index.html#view=campaigns&campaign=grid" in result.output
    assert "board: " not in project.kjob("sweep", "grid", "--status").output


def test_a_run_page_shows_its_inputs_and_what_was_made_from_it(site, tmp_path, monkeypatch):
    """Lineage: a run given another's outputs (kjob push --input) names it, its mounts and the
    SHA-256 of each file it got; the run it was given names it back; each a link to the other."""
    import hashlib
    from urllib.parse import quote

    from kjob.runs.query import RunQuery, select_runs
    from kjob.workspace import find_workspace

    _, browser, _ = site
    monkeypatch.chdir(tmp_path)
    project = Project(tmp_path)
    assert project.kjob("push", "snd", "-p", "epochs=2", "--wait").exit_code == 0
    result = project.kjob("push", "snd", "-p", "epochs=3", "--input", "snd:local-v1", "--wait")
    assert result.exit_code == 0, result.output
    assert project.kjob("board").exit_code == 0
    runs = {r.version: r for r in runs_of(project)}
    show(browser, project, f"view=run&run={runs[2].id}", "document.querySelector('#run-lineage [data-sha256]')")
    files = browser.js("Object.fromEntries([...document.querySelectorAll('#run-lineage .input tr')].map(tr => "
                       "[tr.cells[0].textContent, tr.querySelector('[data-sha256]').dataset.sha256]))")
    output = tmp_path / "downloads/snd/local-v1/output"
    assert files == runs[2].inputs[0]["files"] and {"metrics.jsonl", "metadata.json"} <= set(files)
    assert all(hashlib.sha256((output / name).read_bytes()).hexdigest() == sha for name, sha in files.items())
    lineage = browser.js("document.querySelector('#run-lineage').innerText")
    assert "snd v1 (local)" in lineage and "/kaggle/input/" in lineage and "made into" in lineage
    browser.js("document.querySelector('#run-lineage .input a').click()")  # to the run it was given
    browser.wait("!!(document.querySelector('#run-title') && document.querySelector('#run-title').textContent"
                 ".startsWith('snd v1 ') && document.querySelector('#run-lineage .made a'))")
    assert browser.js("location.hash") == f"#view=run&run={runs[1].id}"
    assert browser.js("document.querySelector('#run-lineage .made a').getAttribute('href')") == \
        f"#view=run&run={runs[2].id}"
    assert "nothing: no inputs" in browser.js("document.querySelector('#run-lineage').innerText")
    for condition in ("input=snd:v1", "input=snd:local-v1", "input!=snd", "inputs=snd:local-v1"):
        expected = {r.ref for r in select_runs(find_workspace(tmp_path), RunQuery(where=(condition,))).runs}
        show(browser, project, f"view=runs&where={quote(condition)}", "document.querySelector('#count')")
        assert set(table_refs(browser)) == expected, condition
    assert expected == {"snd v2 (local)"}
    show(browser, project, "view=runs", "document.querySelector('#runs')")
    assert "snd:local-v1" in browser.js("document.querySelector('#runs tr[data-ref=\"snd v2 (local)\"]').innerText")
