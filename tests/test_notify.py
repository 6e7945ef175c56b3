"""Knowing when runs end without watching: `push --wait --notify CMD`, `sweep --notify CMD` and
`[tool.kjob] notify`, on real local runs (tests/board_project.py's project). The command sees
the run in its environment; one that fails is one warning line, and the run is still recorded
and fetched."""

import pytest

from board_project import PYPROJECT, Project

RECORD = 'printf "%s|%s|%s|%s|%s\\n" "$KJOB_RUN" "$KJOB_STATUS" "$KJOB_METRIC_NAME" "$KJOB_METRIC" "$KJOB_STAGE" >> told.txt'


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_OWNER", raising=False)
    return Project(tmp_path)


def told(project) -> list[list[str]]:
    path = project.root / "told.txt"
    return [line.split("|") for line in path.read_text().splitlines()] if path.exists() else []


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_push_wait_notifies_with_the_run_its_status_and_metric(project):
    result = project.kjob("push", "snd", "-p", "lr=0.01", "-p", "epochs=3", "--wait", "--notify", RECORD)
    assert result.exit_code == 0, result.output
    [[ref, status, name, value, stage]] = told(project)
    assert (ref, status, name, stage) == ("snd v1 (local)", "complete", "val_acc", "")
    assert float(value) == pytest.approx((0.9 + 0.02) * (1 - 2.718281828 ** -1), abs=1e-3)  # lr 0.01, hidden 16
    result = project.kjob("push", "snd", "-p", "fail=true", "--wait", "--notify", RECORD)
    assert result.exit_code == 1
    assert told(project)[1][:4] == ["snd v2 (local)", "error", "val_acc", ""]  # no metric: empty


def test_a_failing_command_is_one_warning_and_the_run_is_kept(project):
    result = project.kjob("push", "snd", "-p", "epochs=2", "--wait", "--notify", "echo no mail server >&2; exit 3")
    assert result.exit_code == 0, result.output  # the run's own outcome
    assert warnings(result) == ["warning: --notify for snd v1 (local): `echo no mail server >&2; exit 3` exited "
                                "with 3: no mail server"]
    assert (project.root / "downloads/snd/local-v1/output/metrics.jsonl").is_file()
    result = project.kjob("push", "snd", "-p", "epochs=2", "--wait", "--notify", "kjob-no-such-notifier")
    assert result.exit_code == 0 and len(warnings(result)) == 1 and "exited with 127" in warnings(result)[0]
    runs = project.kjob("runs", "--all")
    assert runs.exit_code == 0 and len(runs.stdout.splitlines()) == 3  # both runs recorded


def test_the_workspace_notify_and_sweep(project):
    project.write("pyproject.toml", PYPROJECT + f"notify = '''{RECORD}'''\n")
    result = project.kjob("sweep", "grid")
    assert result.exit_code == 0, result.output
    lines = told(project)
    assert len(lines) == 7  # every member once, as it ended and was fetched
    assert {line[4] for line in lines} == {"screen", "full"} and all(line[1] == "complete" for line in lines)
    assert all(line[2] == "val_acc" and float(line[3]) > 0 for line in lines)
    assert lines[-1][4] == "full"  # the top-k member ends last
    again = project.kjob("sweep", "grid")  # nothing ends in a sweep that has nothing to do: nothing told
    assert again.exit_code == 0 and len(told(project)) == 7
    result = project.kjob("push", "snd", "-p", "epochs=2", "--notify", RECORD)
    assert result.exit_code == 2 and "--notify needs --wait" in result.output
    project.write("pyproject.toml", PYPROJECT + "notify = 3\n")
    result = project.kjob("runs")
    assert result.exit_code == 2 and "notify" in result.output and result.output.count("\n") == 1
