"""Secrets a kernel reads with Kaggle's `kaggle_secrets`, in the runs kjob makes here (issue 21).

`kjob secrets set NAME` stores a value (from standard input) outside the workspace; a recipe's
`secrets = [...]` lists the names its kernel may read; smoke runs, local runs and the emulator's
sessions answer `UserSecretsClient().get_secret(NAME)` for those names only, and fail with
Kaggle's exception classes otherwise. The value never appears in anything kjob writes or prints.
A Kaggle push of a recipe with secrets and no internet is refused. The credential scan knows W&B
keys and Hugging Face tokens.

Every value here is random, made by the test (never a real credential).
"""

import hashlib
import json
import os
import secrets
import stat

import pytest

from kjob.cli import cli
from kjob.credentials import find_leaks
from kjob.runs.ledger import Ledger

# Reads a secret as on Kaggle and writes its hash (never the value) to its outputs, with what
# it could see of the value besides: its environment, the run's file of secrets.
SECRET_JOB = '''
"""Reads a secret through kaggle_secrets, as a Kaggle notebook does."""
import hashlib
import json
import os


def main(name, fail):
    from kaggle_secrets import UserSecretsClient

    try:
        value = UserSecretsClient().get_secret(name)
    except Exception as exc:
        with open("secret.json", "w") as f:
            json.dump({"error": type(exc).__name__, "module": type(exc).__module__}, f)
        raise
    run_file = os.path.join(os.path.dirname(os.environ["HOME"]), "secrets.json")
    seen = {
        "sha256": hashlib.sha256(value.encode()).hexdigest(),
        "in_environment": any(value in v for v in os.environ.values()),
        "run_file_left": os.path.exists(run_file),
    }
    with open("secret.json", "w") as f:
        json.dump(seen, f)
    print("the secret is", value, flush=True)  # kjob masks it in every log it keeps
    if fail:
        raise RuntimeError("refused " + value)
'''

SECRET_RECIPE = """
title = "Secret Kernel"
slug = "secret-kernel"
modules = ["pkg/secretjob.py"]
entry = "main"
accelerator = "none"
internet = {internet}
secrets = ["WANDB_API_KEY", "HF_TOKEN"]

[parameters]
name = "WANDB_API_KEY"
fail = false

[smoke]
timeout = 60
"""


@pytest.fixture
def store(tmp_path_factory, monkeypatch):
    """The user's secret store, in a configuration folder outside the workspace."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config / "kjob" / "secrets.json"


@pytest.fixture
def secret_ws(tiny, store):
    tiny.write("builders/secret.toml", SECRET_RECIPE.format(internet="false"))
    tiny.write("src/pkg/secretjob.py", SECRET_JOB)
    return tiny


def set_secret(ws, name: str) -> str:
    value = "wb" + secrets.token_hex(20)
    result = ws.runner.invoke(cli, ["secrets", "set", name], input=value + "\n", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert value not in result.output and name in result.stdout
    return value


def files_under(root):
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def assert_nowhere(value: str, root, printed: list[str]) -> None:
    """Neither any file under `root` (workspace, .kjob, kernels, downloads, emulator state) nor
    any line kjob printed holds `value`."""
    found = [str(p.relative_to(root)) for p in files_under(root) if value.encode() in p.read_bytes()]
    assert found == []
    assert not any(value in text for text in printed)


def test_set_reads_standard_input_and_keeps_the_store_private(secret_ws, store):
    value = set_secret(secret_ws, "WANDB_API_KEY")
    assert json.loads(store.read_text())["secrets"]["WANDB_API_KEY"] == value
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert not secret_ws.root in store.parents  # outside the workspace
    listed = secret_ws.kjob("secrets", "list")
    assert listed.stdout.split() == ["WANDB_API_KEY"] and value not in listed.output
    assert secret_ws.kjob("secrets", "delete", "WANDB_API_KEY").exit_code == 0
    assert secret_ws.kjob("secrets", "list").stdout.strip().startswith("no secrets stored")
    gone = secret_ws.kjob("secrets", "delete", "WANDB_API_KEY")
    assert gone.exit_code == 4 and gone.stderr.startswith("error: no secret WANDB_API_KEY")
    bad = secret_ws.runner.invoke(cli, ["secrets", "set", "wandb"], input="x\n")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_a_recipe_lists_secrets_by_upper_case_name(secret_ws):
    secret_ws.write("builders/secret.toml", SECRET_RECIPE.format(internet="false").replace('"HF_TOKEN"', '"hf-token"'))
    result = secret_ws.kjob("build", "secret")
    assert result.exit_code == 2 and "secrets" in result.stderr and "hf-token" in result.stderr


@pytest.mark.parametrize("sandbox", ["bwrap", "env"])
def test_a_smoke_run_and_a_local_run_read_a_listed_secret(secret_ws, store, monkeypatch, sandbox):
    from kjob.sandbox.isolation import bwrap_problem

    if sandbox == "bwrap" and bwrap_problem():
        pytest.skip(f"bubblewrap cannot run here: {bwrap_problem()}")
    monkeypatch.setenv("KJOB_SANDBOX", sandbox)
    value = set_secret(secret_ws, "WANDB_API_KEY")
    printed = []
    smoke = secret_ws.kjob("build", "secret", "--smoke")
    printed.append(smoke.output)
    assert smoke.exit_code == 0, smoke.output
    seen = json.loads((secret_ws.root / ".kjob/smoke/secret/working/secret.json").read_text())
    assert seen == {"sha256": hashlib.sha256(value.encode()).hexdigest(), "in_environment": False,
                    "run_file_left": False}
    pushed = secret_ws.kjob("push", "secret", "--wait")
    printed.append(pushed.output)
    assert pushed.exit_code == 0, pushed.output
    downloaded = [p for p in files_under(secret_ws.root / "downloads") if p.name == "secret.json"]
    assert len(downloaded) == 1
    assert json.loads(downloaded[0].read_text())["sha256"] == hashlib.sha256(value.encode()).hexdigest()
    logs = secret_ws.kjob("logs", "secret")
    printed.append(logs.output)
    assert "the secret is <" in logs.stdout  # the print is there, its value masked
    failed = secret_ws.kjob("push", "secret", "-p", "fail=true", "--wait")  # the value in an error message
    printed.append(failed.output)
    assert failed.exit_code == 1
    for command in (("status", "secret", "--json"), ("runs",), ("fetch", "secret"), ("--debug", "logs", "secret"),
                    ("--debug", "build", "secret", "--smoke", "-p", "fail=true")):
        printed.append(secret_ws.kjob(*command).output)
    assert "RuntimeError: refused <" in printed[-1]  # the smoke run's error, its value masked
    assert not list((secret_ws.root / ".kjob").rglob("secrets.json"))  # each run's own file is gone
    assert_nowhere(value, secret_ws.root, printed)


@pytest.mark.parametrize("name, why", [("GITHUB_PAT", "kjob attaches only the recipe's secrets"),
                                       ("HF_TOKEN", "listed but not set on this machine")])
def test_an_unlisted_or_unset_name_fails_inside_the_run_as_on_kaggle(secret_ws, name, why):
    set_secret(secret_ws, "WANDB_API_KEY")
    smoke = secret_ws.kjob("build", "secret", "--smoke", "-p", f"name={name}")
    assert smoke.exit_code == 1
    assert "BackendError" in smoke.stderr and why in smoke.stderr
    seen = json.loads((secret_ws.root / ".kjob/smoke/secret/working/secret.json").read_text())
    assert seen == {"error": "BackendError", "module": "kaggle_secrets"}
    pushed = secret_ws.kjob("push", "secret", "-p", f"name={name}", "--wait")
    assert pushed.exit_code == 1 and "BackendError" in pushed.output


def test_kaggles_other_errors_keep_their_classes(secret_ws):
    set_secret(secret_ws, "WANDB_API_KEY")
    smoke = secret_ws.kjob("build", "secret", "--smoke", "-p", "name=")
    assert smoke.exit_code == 1 and "ValidationError" in smoke.stderr
    secret_ws.write("src/pkg/secretjob.py", SECRET_JOB.replace(
        "    from kaggle_secrets import UserSecretsClient\n",
        "    from kaggle_secrets import UserSecretsClient\n    os.environ['KAGGLE_USER_SECRETS_TOKEN'] = 'forged'\n"))
    forged = secret_ws.kjob("build", "secret", "--smoke")
    assert forged.exit_code == 1 and "CredentialError" in forged.stderr


SECRET_SCRIPT = """
import hashlib
from kaggle_secrets import UserSecretsClient

value = UserSecretsClient().get_secret("HF_TOKEN")
open("secret.txt", "w").write(hashlib.sha256(value.encode()).hexdigest())
print("token:", value)
"""


@pytest.mark.parametrize("sandbox", ["bwrap", "env"])
def test_a_script_run_reads_its_secret_too(tmp_path, monkeypatch, sandbox):
    from kjob.sandbox.folder import RunSpec, Sandbox
    from kjob.sandbox.isolation import bwrap_problem

    if sandbox == "bwrap" and bwrap_problem():
        pytest.skip(f"bubblewrap cannot run here: {bwrap_problem()}")
    monkeypatch.setenv("KJOB_SANDBOX", sandbox)
    value = "hf_" + secrets.token_hex(20)
    spec = RunSpec(timeout=60, kind="script", secrets=("HF_TOKEN",))
    sandbox_run = Sandbox.create(tmp_path / "run", SECRET_SCRIPT, {}, spec, secret_values={"HF_TOKEN": value})
    assert stat.S_IMODE(sandbox_run.paths.secrets.stat().st_mode) == 0o600
    state = sandbox_run.run()
    assert state["status"] == "complete", state
    written = (sandbox_run.paths.working_dir / "secret.txt").read_text()
    assert written == hashlib.sha256(value.encode()).hexdigest()
    assert "token: <" in sandbox_run.paths.log.read_text()
    assert_nowhere(value, tmp_path, [])


def test_a_ray_run_reads_its_secret_from_the_shared_storage(secret_ws, monkeypatch):
    import sys

    from ray_head import RayHead

    pytest.importorskip("ray")
    value = set_secret(secret_ws, "WANDB_API_KEY")
    head = RayHead(cpus=2).start()
    try:
        for name, setting in head.env.items():
            monkeypatch.setenv(name, setting)
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        secret_ws.write("pyproject.toml", (secret_ws.root / "pyproject.toml").read_text() + f"""
[tool.kjob.ray]
address = "{head.address}"
storage = "storage"
python = "{sys.executable}"
""")
        (secret_ws.root / "storage").mkdir()
        pushed = secret_ws.kjob("push", "secret", "--backend", "ray", "--wait")
        assert pushed.exit_code == 0, pushed.output
        seen = json.loads((secret_ws.root / "storage/secret/v1/working/secret.json").read_text())
        assert seen == {"sha256": hashlib.sha256(value.encode()).hexdigest(), "in_environment": False,
                        "run_file_left": False}
        printed = [pushed.output, secret_ws.kjob("logs", "secret", "--backend", "ray").output]
        assert_nowhere(value, secret_ws.root, printed)
    finally:
        head.close()


def test_a_secret_is_read_in_an_emulator_session_and_written_nowhere(secret_ws, store, tmp_path, monkeypatch):
    from kaggle_fixtures import start_kaggle

    kaggle = start_kaggle(secret_ws, tmp_path, monkeypatch)
    try:
        secret_ws.write("builders/secret.toml", SECRET_RECIPE.format(internet="true"))
        value = set_secret(secret_ws, "WANDB_API_KEY")
        printed = []
        pushed = kaggle.push("secret", "--wait")
        printed.append(pushed.output)
        assert pushed.exit_code == 0, pushed.output
        warnings = [line for line in pushed.stderr.splitlines() if "Add-ons > Secrets" in line]
        assert len(warnings) == 1 and "WANDB_API_KEY, HF_TOKEN" in warnings[0]
        downloaded = [p for p in files_under(secret_ws.root / "downloads") if p.name == "secret.json"]
        assert len(downloaded) == 1
        assert json.loads(downloaded[0].read_text())["sha256"] == hashlib.sha256(value.encode()).hexdigest()
        for command in (("logs", "secret", "--backend", "kaggle"), ("status", "secret", "--backend", "kaggle"),
                        ("runs",)):
            printed.append(secret_ws.kjob(*command).output)
        assert (tmp_path / "emulator").is_dir()  # the emulator's state is searched with the workspace
        assert_nowhere(value, tmp_path, printed)
    finally:
        kaggle.emulator.stop()


def test_a_kaggle_push_with_secrets_and_no_internet_is_refused(secret_ws, tmp_path, monkeypatch):
    from kaggle_fixtures import start_kaggle

    kaggle = start_kaggle(secret_ws, tmp_path, monkeypatch)
    try:
        result = kaggle.push("secret")
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "internet = true" in lines[0] and "WANDB_API_KEY" in lines[0]
        assert kaggle.emulator.requests("SaveKernel") == []
        ledger = secret_ws.root / ".kjob/ledger.sqlite3"
        if ledger.exists():
            with Ledger(ledger) as opened:
                assert opened.runs() == []
    finally:
        kaggle.emulator.stop()


WANDB_KEY = "3f" + "a1" * 19  # 40 hex digits


@pytest.mark.parametrize("code", [
    f'wandb.login(key="{WANDB_KEY}")',
    f"wandb.login(relogin=True, key='{WANDB_KEY}')",
    f'os.environ["WANDB_API_KEY"] = "{WANDB_KEY}"',
    f"%env WANDB_API_KEY={WANDB_KEY}",
    f"WANDB_API_KEY={WANDB_KEY} python train.py",
    'login(token="hf_' + "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH" + '")',
    'os.environ["HF_TOKEN"] = "hf_' + "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH" + '"',
])
def test_the_scan_knows_wandb_keys_and_hugging_face_tokens(code):
    leaks = find_leaks(code)
    assert len(leaks) == 1 and leaks[0].masked.startswith("<") and WANDB_KEY not in leaks[0].masked


@pytest.mark.parametrize("code", [
    f'COMMIT = "{WANDB_KEY}"',  # a git hash is 40 hex digits too
    f'wandb.init(project="x", id="{WANDB_KEY}")',
    'os.environ["WANDB_API_KEY"] = UserSecretsClient().get_secret("WANDB_API_KEY")',
    'repo = "hf_internal_testing"',
])
def test_the_scan_leaves_other_40_hex_strings_and_hf_names_alone(code):
    assert find_leaks(code) == []


def test_a_wandb_key_pasted_into_code_refuses_the_build(secret_ws):
    secret_ws.write("src/pkg/secretjob.py", SECRET_JOB + f'\nos.environ["WANDB_API_KEY"] = "{WANDB_KEY}"\n')
    result = secret_ws.kjob("build", "secret")
    assert result.exit_code == 3 and "W&B API key" in result.output and WANDB_KEY not in result.output
    assert not (secret_ws.root / "kernels/secret").exists()


def test_a_stored_value_pasted_into_code_refuses_the_build(secret_ws):
    value = set_secret(secret_ws, "HF_TOKEN")
    secret_ws.write("src/pkg/secretjob.py", SECRET_JOB + f'\nBACKUP = "{value}"\n')
    result = secret_ws.kjob("build", "secret")
    assert result.exit_code == 3 and "the kjob secret HF_TOKEN" in result.output and value not in result.output


def test_a_store_other_users_can_read_is_refused_when_a_run_would_use_it(secret_ws, store):
    value = set_secret(secret_ws, "WANDB_API_KEY")
    os.chmod(store, 0o644)
    result = secret_ws.kjob("build", "secret", "--smoke")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 2 and len(errors) == 1 and "chmod 600" in errors[0]
    assert value not in result.output
    set_secret(secret_ws, "HF_TOKEN")  # writing it again makes it private
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_a_run_that_never_starts_takes_its_secrets_with_it(tmp_path):
    from kjob.sandbox.folder import RunSpec, Sandbox

    spec = RunSpec(timeout=60, kind="script", secrets=("HF_TOKEN",))
    run = Sandbox.create(tmp_path / "run", "print('never')\n", {}, spec, secret_values={"HF_TOKEN": "x" * 20})
    assert run.paths.secrets.is_file()
    assert run.cancel() is True
    assert run.status().status == "cancelled" and not run.paths.secrets.exists()
