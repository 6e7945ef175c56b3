"""The emulator as strict as Kaggle, and the calls the official `kaggle` CLI (2.2.4) and kagglehub
make besides the kernels' basics (issue 22): each through the CLI's own entry point or kagglesdk's
own client, over real HTTP (official_cli.py says how the CLI is reached)."""

import importlib.util
import io
import json
import tarfile
import zipfile

import pytest
import requests
from requests import HTTPError

from kjob.emulator.reads import session_id
from official_cli import kernel_folder, notebook, start

if importlib.util.find_spec("kaggle") is None or importlib.util.find_spec("six") is None:
    pytest.skip("the official client is a test extra: pip install -e '.[test]' (kaggle 2.2.4 and six)",
                allow_module_level=True)

WRITES = notebook("""
    import os
    label = open("label.txt").read() if os.path.exists("label.txt") else "one"
    open("result.txt", "w").write("version one" if "VERSION" not in os.environ else "")
""")


def writes(text: str, *names: str) -> str:
    """A notebook writing `text` into each of `names` in /kaggle/working."""
    lines = [f"open({name!r}, 'w').write({text!r})" for name in names]
    return notebook("\n".join(lines))


@pytest.fixture
def cli(tmp_path):
    official = start(tmp_path)
    yield official
    official.emulator.stop()


@pytest.fixture
def sdk(cli, monkeypatch):
    """kagglesdk's own client, signed in as alice, pointed at the emulator (its LOCAL endpoint)."""
    from kagglesdk import KaggleClient, kaggle_env

    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, cli.emulator.url)
    with KaggleClient(env=kaggle_env.KaggleEnv.LOCAL, username="alice", password=cli.keys["alice"]) as client:
        yield client


def pushed(result) -> int:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "successfully pushed" in result.stdout, result.stdout
    return int(result.stdout.split("Kernel version ")[1].split()[0])


def said(result) -> str:
    return result.stdout + result.stderr


# -- kernels that do not exist, and versions ------------------------------------------------

def test_a_deleted_kernel_and_a_wrong_slug_answer_403_and_the_switch_keeps_404(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/short-lived", "Short Lived", writes("x", "a.txt"))
    pushed(cli("kernels", "push", "-p", str(folder)))
    cli.wait("alice/short-lived")
    assert cli("kernels", "delete", "alice/short-lived", "-y").returncode == 0
    for command in (("kernels", "status"), ("kernels", "output"), ("kernels", "logs")):
        for ref in ("alice/short-lived", "alice/never-made"):
            answer = cli(*command, ref, "-p", str(tmp_path / "o")) if command[1] == "output" else cli(*command, ref)
            # The official client's own message for Kaggle's 403.
            assert answer.returncode != 0 and "most likely cause is a wrong kernel slug" in said(answer), said(answer)
    cli.emulator.missing_kernel_status = 404
    old = cli("kernels", "status", "alice/short-lived")
    assert old.returncode != 0 and "Kernel alice/short-lived not found" in said(old) and "most likely" not in said(old)


def test_a_version_is_named_only_as_v_and_its_number(cli, tmp_path, sdk):
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

    folder = kernel_folder(tmp_path, "alice/two-versions", "Two Versions", notebook("print('version one')"))
    pushed(cli("kernels", "push", "-p", str(folder)))
    (folder / "main.ipynb").write_text(notebook("print('version two')"))
    assert pushed(cli("kernels", "push", "-p", str(folder))) == 2

    def get(slug: str, label: str | None = None):
        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = "alice", slug
        if label:
            request.version_label = label
        return sdk.kernels.kernels_api_client.get_kernel(request)

    assert "version one" in get("two-versions", "v1").blob.source  # what kjob sends
    assert "version two" in get("two-versions").blob.source
    for slug, label, code in (("two-versions", "1", 404), ("two-versions/1", None, 403), ("two-versions", "v3", 404)):
        with pytest.raises(HTTPError) as refused:
            get(slug, label)
        assert refused.value.response.status_code == code, (slug, label)
    # The official CLI writes the version into the slug: Kaggle's 403 (kaggle-cli PR 1201).
    versioned = cli("kernels", "pull", "alice/two-versions/1", "-p", str(tmp_path / "v1"))
    assert versioned.returncode != 0 and "was denied" in said(versioned)
    # ... and `logs --follow` into the stream's path, which answers 404 (the same PR).
    followed = cli("kernels", "logs", "alice/two-versions/1", "--follow")
    assert followed.returncode != 0 and "404" in said(followed)


# -- what a push is checked for ----------------------------------------------------------

def test_push_refuses_an_unknown_machine_shape_and_a_large_source_and_names_invalid_tags(cli, tmp_path):
    folder = kernel_folder(tmp_path, "alice/shapes", "Shapes", writes("x", "a.txt"), keywords=["gpu", "No Such Tag"])
    refused = cli("kernels", "push", "-p", str(folder), "--accelerator", "NvidiaTeslaT5")
    assert refused.returncode != 0 and "Invalid machine shape 'NvidiaTeslaT5'" in said(refused)
    assert "NvidiaTeslaT4" in said(refused) and "TpuV6E8" in said(refused)  # the accepted ones are named
    assert cli.emulator.store.kernels == {}  # nothing was made
    big = kernel_folder(tmp_path, "alice/too-big", "Too Big", notebook("x = " + repr("0" * 1_000_000)))
    too_big = cli("kernels", "push", "-p", str(big))
    assert too_big.returncode != 0 and "must be less than 1 megabytes" in said(too_big)
    assert cli.emulator.store.kernels == {}
    accepted = cli("kernels", "push", "-p", str(folder), "--accelerator", "NvidiaL4")
    assert pushed(accepted) == 1
    assert "not valid tags" in accepted.stdout and "No Such Tag" in accepted.stdout
    assert "'gpu'" not in accepted.stdout.split("not valid tags")[1]


def test_a_session_runs_no_longer_than_its_accelerators_limit(cli, tmp_path):
    from kjob.kaggle_platform import SESSION_LIMIT

    cli.emulator.faults.set(hold=True)  # what matters is the limit each session was given
    for slug, options in (("long-tpu", ("--accelerator", "TpuV5E8")), ("long-cpu", ())):
        folder = kernel_folder(tmp_path, f"alice/{slug}", slug, writes("x", "a.txt"))
        pushed(cli("kernels", "push", "-p", str(folder), "-t", str(13 * 3600), *options))

    def limit(slug: str) -> int:
        with cli.emulator.store.lock:
            return cli.emulator.store.kernel("alice", slug).versions[-1].session.sandbox.spec["timeout"]

    assert limit("long-tpu") == SESSION_LIMIT["tpu"].value == 9 * 3600  # Kaggle's TPU sessions: 9 h
    assert limit("long-cpu") == SESSION_LIMIT["none"].value == 12 * 3600  # asked 13 h: CPU and GPU get 12 h


def test_an_r_kernel_is_accepted_and_its_session_says_the_emulator_does_not_run_r(cli, tmp_path):
    code = 'cat("hello from R\\n")\n'
    folder = kernel_folder(tmp_path, "alice/written-in-r", "Written In R", code, language="r", kernel_type="script",
                           code_file="main.R")
    assert pushed(cli("kernels", "push", "-p", str(folder))) == 1
    assert cli.wait("alice/written-in-r") == "ERROR"
    status = cli("kernels", "status", "alice/written-in-r")
    assert "ERROR" in status.stdout and "runs Python kernels only" in status.stdout
    pulled = tmp_path / "pulled-r"
    assert cli("kernels", "pull", "alice/written-in-r", "-p", str(pulled), "-m").returncode == 0
    assert json.loads((pulled / "kernel-metadata.json").read_text())["language"] == "r"
    assert [p.read_text() for p in pulled.glob("*.R")] == [code]


def test_kernels_list_honours_output_type_and_parent(cli, tmp_path):
    for slug, names in (("makes-data", ["table.csv"]), ("makes-plot", ["curve.png"])):
        pushed(cli("kernels", "push", "-p", str(kernel_folder(tmp_path, f"alice/{slug}", slug, writes("x", *names)))))
        cli.wait(f"alice/{slug}")

    def listed(*options: str) -> set[str]:
        result = cli("kernels", "list", "--mine", "--csv", *options)
        assert result.returncode == 0, said(result)
        return {line.split(",")[0] for line in result.stdout.splitlines()[1:] if line.strip()}

    assert listed() == {"alice/makes-data", "alice/makes-plot"}
    assert listed("--output-type", "data") == {"alice/makes-data"}
    assert listed("--output-type", "visualization") == {"alice/makes-plot"}
    # Only forks have a parent, and nothing forks through the API.
    assert listed("--parent", "alice/makes-data") == set()


# -- a version's output, by version, and the logs stream RPC ---------------------------------

def test_download_kernel_output_serves_each_versions_own_files(cli, tmp_path, sdk):
    from kagglesdk.kernels.types.kernels_api_service import (ApiDownloadKernelOutputRequest,
                                                             ApiDownloadKernelOutputZipRequest,
                                                             ApiGetKernelSessionLogsStreamRequest)

    folder = kernel_folder(tmp_path, "alice/outputs", "Outputs", writes("first", "one.txt"))
    pushed(cli("kernels", "push", "-p", str(folder)))
    cli.wait("alice/outputs")
    (folder / "main.ipynb").write_text(writes("second", "two.txt"))
    pushed(cli("kernels", "push", "-p", str(folder)))
    cli.wait("alice/outputs")
    client = sdk.kernels.kernels_api_client

    def download(version: int | None, path: str | None = None):
        request = ApiDownloadKernelOutputRequest()
        request.owner_slug, request.kernel_slug, request.version_number = "alice", "outputs", version
        if path:
            request.file_path = path
        return client.download_kernel_output(request)

    def names(response) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(response.content)) as zipped:
            return {name: zipped.read(name) for name in zipped.namelist()}

    assert names(download(1)) == {"one.txt": b"first"}  # an older version's own output
    assert names(download(2)) == names(download(None)) == {"two.txt": b"second"}
    assert download(1, "one.txt").content == b"first"
    with pytest.raises(HTTPError) as missing:
        download(1, "two.txt")
    assert missing.value.response.status_code == 404
    # Redirected to a URL that needs no credentials, as a signed GCS URL.
    location = download(1).history[0].headers["Location"]
    assert names(requests.get(location, timeout=30)) == {"one.txt": b"first"}
    # DownloadKernelOutputZip by a session id, which no public call tells: the emulator's own numbering.
    with cli.emulator.store.lock:
        kernel = cli.emulator.store.kernel("alice", "outputs")
        request = ApiDownloadKernelOutputZipRequest()
        request.kernel_session_id = session_id(kernel, kernel.versions[0])
    assert names(client.download_kernel_output_zip(request)) == {"one.txt": b"first"}
    # The official CLI lists only the latest version's output (kaggle-cli issue 1200).
    out = tmp_path / "cli-out"
    cli("kernels", "output", "alice/outputs", "-p", str(out))
    assert (out / "two.txt").read_text() == "second" and not (out / "one.txt").exists()
    # The logs stream as an RPC: a finished session's log is its JSON array.
    stream = ApiGetKernelSessionLogsStreamRequest()
    stream.user_name, stream.kernel_slug, stream.version_label = "alice", "outputs", "v1"
    answer = client.get_kernel_session_logs_stream(stream)
    assert answer.headers["Content-Type"].startswith("application/json") and isinstance(answer.json(), list)
    # Bob may not download Alice's private output.
    bob = requests.post(f"{cli.emulator.url}/api/v1/kernels.KernelsApiService/DownloadKernelOutput",
                        json={"ownerSlug": "alice", "kernelSlug": "outputs"}, auth=("bob", cli.keys["bob"]), timeout=30)
    assert bob.status_code == 403


# -- datasets ---------------------------------------------------------------------------

def _dataset_folder(tmp_path, ref: str):
    folder = tmp_path / ref.replace("/", "__")
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "notes.txt").write_text("notes\n")
    (folder / "dataset-metadata.json").write_text(json.dumps(
        {"title": ref.split("/")[1].replace("-", " ").title(), "id": ref, "licenses": [{"name": "CC0-1.0"}],
         }))
    return folder


def test_datasets_list_metadata_download_and_delete(cli, tmp_path):
    made = cli("datasets", "create", "-p", str(_dataset_folder(tmp_path, "alice/weather-data")))
    assert made.returncode == 0 and "alice/weather-data" in said(made), said(made)
    cli("datasets", "create", "-p", str(_dataset_folder(tmp_path, "bob/open-data")), "--public", user="bob")
    mine = cli("datasets", "list", "--mine", "--csv")
    assert [line.split(",")[0] for line in mine.stdout.splitlines()[1:]] == ["alice/weather-data"]
    public = cli("datasets", "list", "--csv", "-s", "data").stdout
    assert "bob/open-data" in public and "alice/weather-data" not in public  # alice's is private
    assert "alice/weather-data" not in cli("datasets", "list", "--user", "alice", "--csv", user="bob").stdout
    meta_dir = tmp_path / "meta"
    meta = cli("datasets", "metadata", "alice/weather-data", "-p", str(meta_dir))
    assert meta.returncode == 0, said(meta)
    info = json.loads((meta_dir / "dataset-metadata.json").read_text())["info"]  # the CLI writes the whole answer
    assert info["title"] == "Weather Data" and info["licenses"] == [{"name": "CC0-1.0"}]
    whole = tmp_path / "whole"
    assert cli("datasets", "download", "alice/weather-data", "-p", str(whole), "--unzip").returncode == 0
    assert sorted(p.name for p in whole.iterdir()) == ["a.csv", "notes.txt"]
    assert (whole / "a.csv").read_text() == "x,y\n1,2\n"
    one = tmp_path / "one"
    single = cli("datasets", "download", "alice/weather-data", "-f", "notes.txt", "-p", str(one))
    assert single.returncode == 0 and (one / "notes.txt").read_text() == "notes\n", said(single)
    absent = cli("datasets", "download", "alice/weather-data", "-f", "nope.txt", "-p", str(one))
    assert absent.returncode != 0 and "has no file nope.txt" in said(absent)
    denied = cli("datasets", "download", "alice/weather-data", "-p", str(tmp_path / "bobs"), user="bob")
    assert denied.returncode != 0 and "'datasets.get' was denied" in said(denied)
    assert cli("datasets", "delete", "alice/weather-data", "-y", user="bob").returncode != 0
    assert cli("datasets", "delete", "alice/weather-data", "-y").returncode == 0
    gone = cli("datasets", "status", "alice/weather-data")
    assert gone.returncode != 0 and "alice/weather-data not found" in said(gone)
    assert cli("datasets", "list", "--mine", "--csv").stdout.splitlines()[1:] == []


# -- models -----------------------------------------------------------------------------

def _model_folders(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model-metadata.json").write_text(json.dumps({
        "ownerSlug": "alice", "slug": "denoiser", "title": "Denoiser", "subtitle": "a small one",
        "isPrivate": True, "description": "Removes noise.", "publishTime": "", "provenanceSources": ""}))
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "weights.bin").write_bytes(b"\x00\x01v1")
    (instance / "config.json").write_text('{"layers": 2}')
    (instance / "model-instance-metadata.json").write_text(json.dumps({
        "ownerSlug": "alice", "modelSlug": "denoiser", "instanceSlug": "small", "framework": "PyTorch",
        "overview": "", "usage": "", "licenseName": "Apache 2.0", "fineTunable": False, "trainingData": []}))
    return model, instance


def test_models_create_get_list_instances_versions_and_download(cli, tmp_path):
    model, instance = _model_folders(tmp_path)
    created = cli("models", "create", "-p", str(model))
    assert "Your model was created" in created.stdout, said(created)
    again = cli("models", "create", "-p", str(model))
    assert "Model creation error" in again.stdout and "already exists" in again.stdout
    got = cli("models", "get", "alice/denoiser")
    assert got.returncode == 0 and "Denoiser" in got.stdout, said(got)
    assert "alice/denoiser" in cli("models", "list", "--owner", "alice").stdout
    assert "alice/denoiser" not in cli("models", "list", user="bob").stdout  # private
    made = cli("models", "instances", "create", "-p", str(instance))
    assert "Your model instance was created" in made.stdout, said(made)
    shown = cli("models", "instances", "get", "alice/denoiser/pyTorch/small")
    assert shown.returncode == 0 and "small" in shown.stdout, said(shown)
    (instance / "weights.bin").write_bytes(b"\x00\x01v2")
    version = cli("models", "instances", "versions", "create", "alice/denoiser/pyTorch/small", "-p", str(instance),
                  "-n", "retrained")
    assert "Your model instance version was created" in version.stdout, said(version)
    versions = cli("models", "instances", "versions", "list", "alice/denoiser/pyTorch/small", "--format", "json")
    assert [v["version"] for v in json.loads(versions.stdout)] == [2, 1], said(versions)
    for number, weights in ((1, b"\x00\x01v1"), (2, b"\x00\x01v2")):
        target = tmp_path / f"dl{number}"
        fetched = cli("models", "instances", "versions", "download", f"alice/denoiser/pyTorch/small/{number}",
                      "-p", str(target), "--untar")
        assert fetched.returncode == 0, said(fetched)
        assert (target / "weights.bin").read_bytes() == weights and (target / "config.json").is_file()
    denied = cli("models", "instances", "versions", "download", "alice/denoiser/pyTorch/small/1",
                 "-p", str(tmp_path / "bobs"), user="bob")
    assert denied.returncode != 0 and "'models.get' was denied" in said(denied)
    # A kernel sees a pinned model version under Kaggle's models layout.
    reader = notebook("""
        import os
        root = os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")
        print(open(os.path.join(root, "models/alice/denoiser/pyTorch/small/1/weights.bin"), "rb").read())
    """)
    folder = kernel_folder(tmp_path, "alice/uses-model", "Uses Model", reader,
                           model_sources=["alice/denoiser/pyTorch/small/1"])
    result = cli("kernels", "push", "-p", str(folder))
    assert pushed(result) == 1 and "not valid" not in result.stdout
    assert cli.wait("alice/uses-model") == "COMPLETE"
    log = "".join(e["data"] for e in json.loads(cli("kernels", "logs", "alice/uses-model").stdout))
    assert "v1" in log


def test_models_survive_a_restart(tmp_path):
    first = start(tmp_path, state="kept-models")
    model, instance = _model_folders(tmp_path)
    try:
        assert "created" in first("models", "create", "-p", str(model)).stdout
        assert "created" in first("models", "instances", "create", "-p", str(instance)).stdout
    finally:
        first.emulator.stop()
    second = start(tmp_path, state="kept-models")
    try:
        target = tmp_path / "after"
        fetched = second("models", "instances", "versions", "download", "alice/denoiser/pyTorch/small/1",
                         "-p", str(target))
        assert fetched.returncode == 0, said(fetched)
        with tarfile.open(target / "denoiser.tar.gz") as tarred:
            assert sorted(tarred.getnames()) == ["config.json", "weights.bin"]
    finally:
        second.emulator.stop()
