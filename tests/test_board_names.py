"""`kjob board` for a project that declares no [metrics] and writes its curves as TensorBoard
names them (Loss/train, Loss/val) into metrics.jsonl, with a campaign ranked by a base name
(`metric = "Loss/val"`, which kjob reads as each member's best, Loss/val.best): the campaign
view shows each member's value, its parameter plot and its leaderboard; the board calls best
what the campaign ranks by (not Loss/train.best, first by name); the curves open on the
held-out loss; the run page's notebook link is on screen. Real local runs, a real Chromium."""

import json
import textwrap
import time

import pytest
from click.testing import CliRunner

from cdp_pipe import CHROMIUM, Browser
from kjob.cli import cli

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")

FILES = {
    "pyproject.toml": """
        [project]
        name = "lm"

        [tool.kjob]
        owner = "alice"
        """,
    "builders/lm.toml": """
        title = "Tiny LM"
        slug = "tiny-lm"
        modules = ["lm/train.py"]
        entry = "main"
        accelerator = "none"

        [parameters]
        lr = 0.01
        """,
    "src/lm/__init__.py": "",
    # the training loss falls fastest at lr=0.1, the held-out loss is best at lr=0.01
    "src/lm/train.py": '''
        import json


        def main(lr):
            with open("metrics.jsonl", "w") as f:
                for step in range(1, 6):
                    val = 3.0 / step + abs(lr - 0.01) * 10
                    train = 2.0 / step - lr * 5
                    f.write(json.dumps({"step": step * 10, "Loss/train": train, "Loss/val": val}) + "\\n")
        ''',
    "campaigns/lr.toml": """
        recipe = "lm"
        metric = "Loss/val"
        lanes = 2

        [[grid]]
        lr = [0.1, 0.01]
        """,
}


def test_a_campaign_ranked_by_a_base_name_is_drawn_and_names_the_best(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_OWNER", raising=False)
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    runner = CliRunner()

    def kjob(*args):
        result = runner.invoke(cli, list(args), env={"KJOB_WORKSPACE": str(tmp_path)}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    kjob("push", "lm", "-p", "lr=0.1", "--wait")  # the sweep adopts it: its member has a note
    kjob("sweep", "lr")
    kjob("board")
    data = json.loads((tmp_path / ".kjob/board/data.js").read_text()[len("kjobBoard("):-3])
    [campaign] = data["campaigns"]
    assert campaign["metric"] == "Loss/val.best"
    assert sorted(m["value"] for m in campaign["stages"][0]["members"]) == [0.6, 1.5]
    assert data["primary"] == "Loss/val.best"
    best = next(r for r in data["runs"] if r["params"]["lr"] == 0.01)

    browser = Browser(tmp_path / "profile")
    try:
        url = (tmp_path / ".kjob/board/index.html").as_uri()
        browser.open(url + "#view=campaigns")
        browser.wait("!!document.querySelector('#leaderboard')")
        assert browser.js("document.querySelectorAll('#param-plots svg circle.point').length") == 2
        assert browser.js("document.querySelectorAll('#leaderboard tbody tr').length") == 2
        assert "adopted" in browser.js("document.querySelector('#stages').innerText")
        assert browser.js("[...document.querySelectorAll('#stages .stage')].every(card => "
                          "card.querySelector('table').getBoundingClientRect().right <= card.getBoundingClientRect().right)")
        assert browser.js("document.querySelector('#campaign-best').textContent").startswith(
            "Best member by Loss/val.best (lowest): main[lr=0.01]")
        browser.js("location.hash = '#view=runs'")
        browser.wait("!!document.querySelector('#best')")
        assert browser.js("document.querySelector('#best').textContent").startswith(
            f"Best by Loss/val.best (lowest): {best['ref']} 0.6")
        browser.js("location.hash = '#view=curves'")
        browser.wait("document.querySelectorAll('#curves path.series').length == 2")
        assert browser.js("document.querySelector('#metric').value") == "Loss/val"
        browser.js(f"location.hash = '#view=run&run={best['id']}'")
        browser.wait("!!document.querySelector('#run-curve path.series')")
        time.sleep(0.1)
        link = browser.js("(function () { var a = [...document.querySelectorAll('#view-run a')].filter("
                          "a => a.getAttribute('href').startsWith('../notebooks/'))[0];"
                          " var r = a.getBoundingClientRect(), box = a.closest('.card').getBoundingClientRect();"
                          " return [r.width > 0 && r.right <= box.right, a.textContent]; })()")
        assert link == [True, "open"]  # beside the notebook's hash, not pushed off its card
    finally:
        browser.close()
