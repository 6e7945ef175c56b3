"""The emulator as the official `kaggle` CLI (2.2.4) sees it: each command a user types, through
the CLI's own entry point and kagglesdk, over real HTTP (see official_cli.py for how it is reached)."""

import importlib.util
import json
import os
from datetime import datetime, timezone

import pytest

from official_cli import kernel_folder, notebook, port_80_free, start

# Not imported here: `import kaggle` signs in at import time. The CLI runs in its own processes.
if importlib.util.find_spec("kaggle") is None or importlib.util.find_spec("six") is None:
    pytest.skip("the official client is a test extra: pip install -e '.[test]' (kaggle 2.2.4 and six)",
                allow_module_level=True)

WRITES = notebook("""
    import os
    root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")  # set where bubblewrap is missing
    print("reading", sorted(os.listdir(root)))
    os.makedirs("plots", exist_ok=True)
    open("metrics.json", "w").write('{"val_loss": 0.5}')
    open("plots/curve.csv", "w").write("epoch,loss\\n1,0.5\\n")
    print("done")
""")


@pytest.fixture
def cli(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("hello\n")
    official = start(tmp_path, data_sources={"someone/some-data": data})
    yield official
    official.emulator.stop()


def pushed(result) -> int:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "successfully pushed" in result.stdout, result.stdout
    return int(result.stdout.split("Kernel version ")[1].split()[0])


def test_push_status_output_logs_files_and_list(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/first-run", "First Run", WRITES, dataset_sources=["someone/some-data"])
    assert pushed(cli("kernels", "push", "-p", str(folder))) == 1
    assert cli.wait("alice/first-run") == "COMPLETE"
    status = cli("kernels", "status", "alice/first-run")
    assert status.returncode == 0 and "COMPLETE" in status.stdout
    # Output, filtered, then again: the second time the CLI finds nothing newer and rewrites nothing.
    out = tmp_path / "out"
    first = cli("kernels", "output", "alice/first-run", "-p", str(out), "--file-pattern", r"\.json$")
    assert "Output file downloaded" in first.stdout and not (out / "plots").exists()
    assert json.loads((out / "metrics.json").read_text()) == {"val_loss": 0.5}
    stamp = (out / "metrics.json").stat().st_mtime_ns
    second = cli("kernels", "output", "alice/first-run", "-p", str(out), "--file-pattern", r"\.json$")
    assert "metrics.json: Skipping" in second.stdout and "Output file downloaded" not in second.stdout
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    everything = cli("kernels", "output", "alice/first-run", "-p", str(out))
    assert (out / "plots/curve.csv").read_text().startswith("epoch,loss")
    assert "metrics.json: Skipping" in everything.stdout
    # The log, as one blob and as a stream of a finished session.
    log = cli("kernels", "logs", "alice/first-run")
    text = "".join(e["data"] for e in json.loads(log.stdout))
    assert text == "reading ['datasets', 'some-data']\ndone\n"  # both of Kaggle's input layouts
    follow = cli("kernels", "logs", "alice/first-run", "-f")
    assert follow.returncode == 0 and "done" in follow.stdout
    files = cli("kernels", "files", "alice/first-run")
    assert "metrics.json" in files.stdout and "plots/curve.csv" in files.stdout
    listing = cli("kernels", "list", "--mine")
    assert listing.returncode == 0 and "alice/first-run" in listing.stdout and "First Run" in listing.stdout


def test_push_again_follow_a_live_log_and_page_the_list(cli, tmp_path):
    slow = notebook("import time\nfor i in range(4):\n    print('epoch', i, flush=True)\n    time.sleep(0.5)")
    folder = kernel_folder(tmp_path, "alice/live-log", "Live Log", WRITES)
    assert pushed(cli("kernels", "push", "-p", str(folder))) == 1
    cli.wait("alice/live-log")
    (folder / "main.ipynb").write_text(slow)
    assert pushed(cli("kernels", "push", "-p", str(folder))) == 2
    follow = cli("kernels", "logs", "alice/live-log", "--follow")  # attaches while it runs
    assert follow.returncode == 0
    assert [line for line in follow.stdout.splitlines() if line.startswith("epoch")] == [f"epoch {i}" for i in range(4)]
    for n in range(2):
        cli("kernels", "push", "-p", str(kernel_folder(tmp_path, f"alice/extra-{n}", f"Extra {n}", WRITES)))
    page = cli("kernels", "list", "--mine", "--page-size", "2", "--page", "2")
    refs = [line.split()[0] for line in page.stdout.splitlines()[2:] if line.strip()]
    assert len(refs) == 1 and refs[0] in {"alice/live-log", "alice/extra-0", "alice/extra-1"}


def test_pull_with_metadata_push_the_pulled_folder_and_a_versioned_pull_refused(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/round-trip", "Round Trip", notebook("print('version one')"))
    pushed(cli("kernels", "push", "-p", str(folder)))
    cli.wait("alice/round-trip")
    pulled = tmp_path / "pulled"
    result = cli("kernels", "pull", "alice/round-trip", "-p", str(pulled), "-m")
    assert result.returncode == 0, result.stderr
    meta = json.loads((pulled / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/round-trip" and meta["title"] == "Round Trip" and meta["is_private"] is True
    code = pulled / meta["code_file"]
    assert "version one" in code.read_text()
    source = json.loads(code.read_text())
    source["cells"][0]["source"] = "print('version two')"
    code.write_text(json.dumps(source))
    # kagglesdk: `id` (id_no) wins over the slug; a slug edited in the pulled metadata changes nothing.
    meta["id"] = "alice/somewhere-else"
    (pulled / "kernel-metadata.json").write_text(json.dumps(meta))
    assert pushed(cli("kernels", "push", "-p", str(pulled))) == 2
    assert "alice/somewhere-else" not in cli("kernels", "list", "--mine").stdout
    latest = tmp_path / "latest"
    cli("kernels", "pull", "alice/round-trip", "-p", str(latest))
    assert "version two" in next(latest.glob("*.ipynb")).read_text()
    # The CLI writes the version into the slug ("round-trip/1"), which Kaggle answers 403
    # (kaggle-cli PR 1201): no version's code comes back, the existing one no more than a missing one.
    for ref in ("alice/round-trip/1", "alice/round-trip/7"):
        refused = cli("kernels", "pull", ref, "-p", str(tmp_path / ref.replace("/", "-")))
        assert refused.returncode != 0 and "kernels.get' was denied" in refused.stdout + refused.stderr
        assert not list((tmp_path / ref.replace("/", "-")).glob("*.ipynb"))


def test_delete_then_push_again_makes_a_new_kernel(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/phoenix", "Phoenix", notebook("print(1)"))
    pushed(cli("kernels", "push", "-p", str(folder)))
    pushed(cli("kernels", "push", "-p", str(folder)))
    cli.wait("alice/phoenix")
    first_id = cli.emulator.store.kernel("alice", "phoenix").id
    deleted = cli("kernels", "delete", "alice/phoenix", "-y")
    assert deleted.returncode == 0 and "deleted successfully" in deleted.stdout
    gone = cli("kernels", "status", "alice/phoenix")  # 403, as Kaggle answers for a deleted kernel
    assert gone.returncode != 0 and "most likely cause is a wrong kernel slug" in gone.stdout + gone.stderr
    assert pushed(cli("kernels", "push", "-p", str(folder))) == 1  # a new kernel, versions from 1
    assert cli.wait("alice/phoenix") == "COMPLETE"
    assert cli.emulator.store.kernel("alice", "phoenix").id != first_id


def test_a_title_that_does_not_slugify_to_the_id(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/my-kernel", "Something Else Entirely", notebook("print(1)"))
    result = cli("kernels", "push", "-p", str(folder))
    assert "title does not resolve to the specified id" in result.stdout  # the CLI's own warning
    assert "/code/alice/something-else-entirely" in result.stdout  # Kaggle made it at the title's slug
    lost = cli("kernels", "status", "alice/my-kernel")  # 403, as Kaggle answers a wrong slug
    assert lost.returncode != 0 and "most likely cause is a wrong kernel slug" in lost.stdout + lost.stderr
    assert cli("kernels", "status", "alice/something-else-entirely").returncode == 0


def test_a_bad_dataset_source_still_makes_a_version_without_it(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/no-data", "No Data", WRITES, dataset_sources=["nobody/missing-data"])
    result = cli("kernels", "push", "-p", str(folder))
    assert "not valid dataset sources" in result.stdout and "nobody/missing-data" in result.stdout
    assert pushed(result) == 1
    assert cli.wait("alice/no-data") == "COMPLETE"
    assert "".join(e["data"] for e in json.loads(cli("kernels", "logs", "alice/no-data").stdout)).startswith("reading []")


def test_another_users_kernels(cli, tmp_path):
    private = kernel_folder(tmp_path, "alice/secret-work", "Secret Work", WRITES)
    public = kernel_folder(tmp_path, "alice/open-work", "Open Work", WRITES, is_private=False)
    pushed(cli("kernels", "push", "-p", str(private)))
    pushed(cli("kernels", "push", "-p", str(public)))
    cli.wait("alice/secret-work"), cli.wait("alice/open-work")
    denied = cli("kernels", "status", "alice/secret-work", user="bob")
    assert denied.returncode != 0 and "denied" in denied.stdout + denied.stderr
    assert cli("kernels", "pull", "alice/open-work", "-p", str(tmp_path / "bobs"), user="bob").returncode == 0
    listed = cli("kernels", "list", "--user", "alice", user="bob").stdout
    assert "alice/open-work" in listed and "alice/secret-work" not in listed
    assert "alice/" not in cli("kernels", "list", "--mine", user="bob").stdout
    # Bob cannot push to or delete Alice's kernels, with a key or with Alice's slug in his metadata.
    refused = cli("kernels", "push", "-p", str(public), user="bob")
    assert "denied" in refused.stdout + refused.stderr
    assert len(cli.emulator.store.kernel("alice", "open-work").versions) == 1
    assert cli("kernels", "delete", "alice/open-work", "-y", user="bob").returncode != 0
    assert "alice/open-work" in cli("kernels", "list", "--mine").stdout


def test_token_sign_in(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/by-token", "By Token", notebook("print(1)"))
    assert pushed(cli("kernels", "push", "-p", str(folder), token=cli.token)) == 1
    assert "alice/by-token" in cli("kernels", "list", "--mine", token=cli.token).stdout
    # The token file the CLI reads when no variable is set.
    (cli.home / ".kaggle/access_token").write_text(cli.token)
    os.chmod(cli.home / ".kaggle/access_token", 0o600)
    assert "alice/by-token" in cli("kernels", "list", "--mine", user=None).stdout
    (cli.home / ".kaggle/access_token").unlink()
    # A token signs in as its user only: Alice's token cannot push as Bob.
    bobs = kernel_folder(tmp_path, "bob/not-mine", "Not Mine", notebook("print(1)"))
    assert "denied" in (r := cli("kernels", "push", "-p", str(bobs), token=cli.token)).stdout + r.stderr
    unknown = cli("kernels", "list", "--mine", token="KGAT_" + "0" * 32)
    assert unknown.returncode != 0 and "alice/by-token" not in unknown.stdout


def test_quota_counts_gpu_by_machine_shape_per_user(cli, tmp_path):
    cli.emulator.faults.set(hold=True)
    for n in range(3):
        folder = kernel_folder(tmp_path, f"alice/gpu-{n}", f"Gpu {n}", notebook("import time; time.sleep(1)"))
        result = cli("kernels", "push", "-p", str(folder), "--accelerator", "NvidiaTeslaT4")
        if n < 2:
            pushed(result)
        else:
            assert "Maximum batch GPU session count of 2 reached" in result.stdout
    bob = kernel_folder(tmp_path, "bob/gpu-b", "Gpu B", notebook("print(1)"), machine_shape="NvidiaTeslaT4")
    pushed(cli("kernels", "push", "-p", str(bob), user="bob"))  # the limit is per account
    cli.emulator.faults.set(hold=False)
    cli.emulator.store.mark_released()
    cli.wait("alice/gpu-0"), cli.wait("alice/gpu-1"), cli.wait("bob/gpu-b")
    quota = cli("quota", "-v")
    assert quota.returncode == 0
    rows = {line.split(",")[0]: line.split(",") for line in quota.stdout.splitlines()[1:]}
    used, refresh = float(rows["GPU"][1].rstrip("h")), rows["GPU"][4]
    assert used < 0.01 and rows["GPU"][3] == "30.00h"  # two sessions of about a second each (shown rounded)
    moment = datetime.fromisoformat(refresh).replace(tzinfo=timezone.utc)
    assert moment.weekday() == 5 and (moment.hour, moment.minute) == (0, 0)  # Saturday 00:00 UTC
    assert 0 < (moment - datetime.now(timezone.utc)).total_seconds() <= 7 * 86400
    alice_seconds = _gpu_seconds(cli.emulator.store, "alice")
    assert alice_seconds > _gpu_seconds(cli.emulator.store, "bob") > 0


def _gpu_seconds(store, user):
    from kjob.emulator.reads import get_accelerator_quota_statistics

    return float(get_accelerator_quota_statistics(store, {}, user)["gpuQuota"]["timeUsed"].rstrip("s"))


def test_a_script_kernel_runs(cli, tmp_path):
    script = "import os, sys\nprint('script in', os.getcwd())\nprint('oops', file=sys.stderr)\nopen('s.txt', 'w').write('x')\n"
    folder = kernel_folder(tmp_path, "alice/a-script", "A Script", script, kernel_type="script")
    pushed(cli("kernels", "push", "-p", str(folder)))
    assert cli.wait("alice/a-script") == "COMPLETE"
    entries = json.loads(cli("kernels", "logs", "alice/a-script").stdout)
    # Two pipes read apart have no common order: on a loaded machine stderr may be read first.
    by_stream = {e["stream_name"]: e["data"] for e in entries}
    assert len(entries) == 2 and by_stream["stdout"].startswith("script in") and by_stream["stderr"] == "oops\n"
    out = tmp_path / "script-out"
    cli("kernels", "output", "alice/a-script", "-p", str(out))
    assert (out / "s.txt").read_text() == "x"
    pulled = tmp_path / "script-pull"
    cli("kernels", "pull", "alice/a-script", "-p", str(pulled), "-m")
    assert json.loads((pulled / "kernel-metadata.json").read_text())["kernel_type"] == "script"
    assert (pulled / "a-script.py").read_text() == script


def test_state_survives_a_restart(tmp_path):
    first = start(tmp_path, state="kept")
    folder = kernel_folder(tmp_path, "alice/kept-run", "Kept Run", WRITES)
    try:
        pushed(first("kernels", "push", "-p", str(folder)))
        first.wait("alice/kept-run")
        first.emulator.faults.set(hold=True)
        pushed(first("kernels", "push", "-p", str(kernel_folder(tmp_path, "alice/queued", "Queued", WRITES))))
        gone = kernel_folder(tmp_path, "alice/gone-run", "Gone Run", WRITES)
        pushed(first("kernels", "push", "-p", str(gone)))
        first("kernels", "delete", "alice/gone-run", "-y")
        kept_id = first.emulator.store.kernel("alice", "kept-run").id
    finally:
        first.emulator.stop()
    second = start(tmp_path, state="kept")  # same folder, a new server on a new port
    try:
        assert second.emulator.store.kernel("alice", "kept-run").id == kept_id
        assert "COMPLETE" in second("kernels", "status", "alice/kept-run").stdout
        out = tmp_path / "after-restart"
        second("kernels", "output", "alice/kept-run", "-p", str(out))
        assert json.loads((out / "metrics.json").read_text()) == {"val_loss": 0.5}
        listing = second("kernels", "list", "--mine").stdout
        assert "alice/kept-run" in listing and "alice/gone-run" not in listing
        assert "CANCEL_ACKNOWLEDGED" in second("kernels", "status", "alice/queued").stdout  # stopped with the server
        assert pushed(second("kernels", "push", "-p", str(folder))) == 2
        assert pushed(second("kernels", "push", "-p", str(gone))) == 1
        ids = [k.id for k in second.emulator.store.every_kernel()]
        assert len(ids) == len(set(ids))  # a restart never reuses a kernel id
    finally:
        second.emulator.stop()


@pytest.mark.skipif(not port_80_free(), reason="needs root and a free port 80 (the official CLI's LOCALHOST)")
def test_the_installed_kaggle_command_on_port_80(tmp_path):
    official = start(tmp_path, port=80)
    try:
        folder = kernel_folder(tmp_path, "alice/port-eighty", "Port Eighty", WRITES)
        assert pushed(official("kernels", "push", "-p", str(folder))) == 1
        assert official.wait("alice/port-eighty") == "COMPLETE"
        assert "COMPLETE" in official("kernels", "status", "alice/port-eighty").stdout
        out = tmp_path / "out80"
        official("kernels", "output", "alice/port-eighty", "-p", str(out))
        assert (out / "metrics.json").is_file()
        assert "alice/port-eighty" in official("kernels", "list", "--mine", token=official.token).stdout
    finally:
        official.emulator.stop()
