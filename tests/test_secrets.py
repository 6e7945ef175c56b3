"""Secrets never leave through kjob: the credentials it can see are refused in a build, masked in
every message and log, kept out of datasets, and a token path that names no file is an error.

Every secret here is random hex made by the test (a throw-away value, never a real credential),
set in the environment with monkeypatch or CliRunner's env=.
"""

import json
import secrets

import pytest

from kjob.runs.ledger import Ledger

PRINTS_A_KEY = '''
"""Builds a key at run time (no scan of the sources can see it) and prints it."""
FIRST, SECOND = "{first}", "{second}"


def main(steps, rate, label, fail, sleep):
    print("the key is", FIRST + SECOND, flush=True)
    if fail:
        raise RuntimeError("refused key " + FIRST + SECOND)
'''


def new_key() -> str:
    """32 hex digits, as a legacy Kaggle key; never one that starts like another's mask."""
    return secrets.token_hex(16)


def edit(ws, rel: str, old: str, new: str) -> None:
    path = ws.root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new))


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def ledger_runs(ws):
    path = ws.root / ".kjob/ledger.sqlite3"
    if not path.exists():
        return []
    with Ledger(path) as ledger:
        return ledger.runs()


def everything_written(ws) -> str:
    """The text of every file under the workspace but the user's own (kernels, .kjob, downloads)."""
    texts = []
    for top in ("kernels", ".kjob", "downloads"):
        for path in sorted((ws.root / top).rglob("*")) if (ws.root / top).exists() else []:
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


# --- 1. the literal values of the credentials kjob can see are refused, before any write -----

def test_the_users_kaggle_key_as_a_bare_parameter_is_refused_before_anything_is_written(tiny, monkeypatch):
    key = new_key()
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", key)
    for command in (["build", "tiny"], ["push", "tiny"], ["push", "tiny", "--wait"]):
        result = tiny.kjob(*command, "-p", f"label={key}")
        assert result.exit_code == 3, (command, result.output)
        assert key not in result.output and key[:4] + "…" not in result.output
        assert "the value of KAGGLE_KEY (<32 hex characters>)" in result.stderr
        assert not (tiny.root / "kernels").exists() and ledger_runs(tiny) == []
        assert key not in everything_written(tiny)


@pytest.mark.parametrize("where", ["kaggle.json", "access_token", "KAGGLE_API_TOKEN", "KAGGLE_API_TOKEN file",
                                   "MY_SERVICE_TOKEN", "S3_SECRET", "OPENAI_KEY"])
def test_every_credential_kjob_can_see_is_refused_wherever_it_appears(tiny, tmp_path, monkeypatch, where):
    key = new_key()
    config = tmp_path / "kaggle-config"
    config.mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_KEY", "KAGGLE_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    if where == "kaggle.json":
        (config / "kaggle.json").write_text(json.dumps({"username": "alice", "key": key}))
    elif where == "access_token":
        (config / "access_token").write_text(key + "\n")
    elif where == "KAGGLE_API_TOKEN file":
        (tmp_path / "token.txt").write_text(key)
        monkeypatch.setenv("KAGGLE_API_TOKEN", str(tmp_path / "token.txt"))
    else:
        monkeypatch.setenv(where, key)
    recipe, util = (tiny.root / "builders/tiny.toml").read_text(), (tiny.root / "src/pkg/util.py").read_text()
    places = {
        "a -p value": ({}, ["-p", f"label=x{key}y"]),
        "the recipe": ({"builders/tiny.toml": recipe.replace('label = "run"', f'label = "{key}"')}, []),
        "the recipe's description": ({"builders/tiny.toml": recipe.replace("two small modules", key)}, []),
        "a source": ({"src/pkg/util.py": util + f"\n# left here by mistake: {key}\n"}, []),
    }
    for place, (files, args) in places.items():
        for rel, text in files.items():
            (tiny.root / rel).write_text(text)
        result = tiny.kjob("build", "tiny", *args)
        assert result.exit_code == 3, (where, place, result.output)
        assert key not in result.output and "<32 hex characters>" in result.stderr, (where, place)
        assert not (tiny.root / "kernels").exists()
        (tiny.root / "builders/tiny.toml").write_text(recipe)
        (tiny.root / "src/pkg/util.py").write_text(util)
    assert tiny.kjob("build", "tiny").exit_code == 0


def test_a_credential_among_the_workspaces_parameters_is_refused_before_anything_is_written(tiny, monkeypatch):
    key = new_key()
    monkeypatch.setenv("WANDB_API_KEY", key)
    tiny.write("pyproject.toml", (tiny.root / "pyproject.toml").read_text()
               + f'\n[tool.kjob.local.parameters]\nlabel = "{key}"\n')
    result = tiny.kjob("push", "tiny", "--wait")
    line = one_error_line(result)
    assert result.exit_code == 2, result.output
    assert "[tool.kjob.local.parameters] label: looks like the value of WANDB_API_KEY (<32 hex characters>)" in line
    assert key not in result.output and ledger_runs(tiny) == [] and key not in everything_written(tiny)


def test_short_trivial_and_path_values_of_key_variables_refuse_nothing(tiny, tmp_path, monkeypatch):
    (tmp_path / "id_rsa").write_text("not read\n")
    env = {"SOME_KEY": "1", "FLAG_TOKEN": "true", "PORT_SECRET": "12345678", "SSH_KEY": str(tmp_path / "id_rsa")}
    edit(tiny, "builders/tiny.toml", 'label = "run"', f'label = "1 true 12345678 {tmp_path / "id_rsa"}"')
    result = tiny.kjob("build", "tiny", env=env)
    assert result.exit_code == 0, result.output


# --- 2. dataset push refuses credential files -----------------------------------------------

def test_dataset_push_refuses_a_folder_holding_credential_files_unless_asked(kaggle):
    ws = kaggle.ws
    ws.write("mydata/hello.txt", "hello\n")
    ws.write("mydata/kaggle.json", json.dumps({"username": "alice", "key": new_key()}))
    ws.write("mydata/sub/access_token", "KGAT_" + new_key() + "\n")
    ws.write("mydata/keys/deploy", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"
                                   "-----END OPENSSH PRIVATE KEY-----\n")
    ws.write("mydata/server.pem", "certificate\n")
    result = kaggle.kjob("dataset", "push", "mydata", "--as", "alice/my-data")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    for name in ("kaggle.json", "sub/access_token", "keys/deploy", "server.pem"):
        assert name in line
    assert "hello.txt" not in line and "--include-secrets" in line
    assert kaggle.emulator.requests("StartBlobUpload") == [] and kaggle.emulator.requests("CreateDataset") == []
    result = kaggle.kjob("dataset", "push", "mydata", "--as", "alice/my-data", "--include-secrets")
    assert result.exit_code == 0, result.output
    assert len(kaggle.emulator.requests("StartBlobUpload")) == 5


# --- 3. a Ray address's password is never shown ----------------------------------------------

def test_a_ray_address_with_a_password_never_shows_it(tiny, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    password = "pw" + new_key()[:12]
    base = (tiny.root / "pyproject.toml").read_text()
    (tiny.root / "pyproject.toml").write_text(base + f"[tool.kjob.ray]\naddress = 'ray://bob:{password}@head:10001'\n"
                                                     "storage = 'storage'\n")
    result = tiny.kjob("push", "tiny", "--backend", "ray")
    assert result.exit_code == 2 and "ray://bob:***@head:10001" in one_error_line(result)
    assert password not in result.output
    monkeypatch.setenv("RAY_ADDRESS", f"ray://bob:{password}@head:10001")
    result = tiny.kjob("push", "tiny", "--backend", "ray")
    assert result.exit_code == 2 and password not in result.output


def test_an_unreachable_ray_address_with_a_password_never_shows_it(tiny, monkeypatch):
    pytest.importorskip("ray.job_submission", reason="ray is not installed")
    from ray_head import free_ports

    password = "pw" + new_key()[:12]
    (tiny.root / "storage").mkdir()
    monkeypatch.setenv("RAY_ADDRESS", f"http://u:{password}@127.0.0.1:{free_ports(1)[0]}")
    tiny.write("pyproject.toml", (tiny.root / "pyproject.toml").read_text() + "[tool.kjob.ray]\nstorage = 'storage'\n"
               f"[tool.kjob.ray.datasets]\n\"someone/some-data\" = \"{tiny.root / 'data/some'}\"\n")
    result = tiny.kjob("push", "tiny", "--backend", "ray")
    assert result.exit_code == 7, result.output
    assert "http://u:***@127.0.0.1" in one_error_line(result) and password not in result.output


# --- 4. and 5. messages mask a secret entirely ------------------------------------------------

def test_the_scans_messages_show_no_character_of_a_secret(tiny):
    secret = secrets.token_hex(12) + "Zq"
    tiny.write("src/pkg/util.py", (tiny.root / "src/pkg/util.py").read_text() + f'\napi_key = "{secret}"\n')
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3
    assert "looks like a hard-coded secret (<26 characters>)" in result.stderr
    assert secret not in result.output and secret[:4] + "…" not in result.output


def test_a_bad_value_that_looks_like_a_token_is_shown_as_its_kind_only(tiny):
    token = "sk-Q" + secrets.token_hex(20)  # not a slug (a capital letter)
    edit(tiny, "builders/tiny.toml", 'slug = "tiny-kernel"', f'slug = "{token}"')
    line = one_error_line(tiny.kjob("build", "tiny"))
    assert "builders/tiny.toml: slug: expected lowercase" in line and "<44 characters>" in line
    assert token[:4] not in line


@pytest.mark.parametrize("first", ["0", "a"])
def test_a_machine_shape_of_32_hex_digits_is_refused_and_never_echoed(tiny, first):
    key = first + new_key()[1:]
    edit(tiny, "builders/tiny.toml", 'accelerator = "none"', f'accelerator = "gpu"\nmachine_shape = "{key}"')
    result = tiny.kjob("build", "tiny")
    line = one_error_line(result)
    assert result.exit_code == 2 and "machine_shape: expected a Kaggle machine shape" in line
    assert "<32 hex characters>" in line and key not in result.output and key[:8] not in result.output
    assert not (tiny.root / "kernels").exists()


# --- 6. a token path that names no file is an error ------------------------------------------

@pytest.mark.parametrize("value", ["/nonexistent/file", "~/no-such-token", "./missing-token"])
def test_a_kaggle_api_token_path_that_does_not_exist_is_an_error_and_nothing_is_sent(kaggle, monkeypatch, value):
    (kaggle.config_dir / "kaggle.json").unlink()
    monkeypatch.setenv("KAGGLE_API_TOKEN", value)
    for args in (["push", "tiny", "--backend", "kaggle"], ["dataset", "push", "data/some", "--as", "alice/some-data"]):
        result = kaggle.kjob(*args)
        line = one_error_line(result)
        assert result.exit_code == 7, result.output
        assert "KAGGLE_API_TOKEN names a file that does not exist" in line and value not in line
    assert kaggle.emulator.http_requests == []


# --- 7. a credential a run prints is masked in every log kjob shows or writes ----------------

def test_a_credential_printed_by_a_run_is_masked_in_logs_watch_lines_and_log_txt(tiny, monkeypatch):
    key = new_key()
    monkeypatch.setenv("MY_SERVICE_TOKEN", key)
    tiny.write("src/pkg/job.py", PRINTS_A_KEY.format(first=key[:16], second=key[16:]))
    result = tiny.kjob("push", "tiny", "--wait")
    assert result.exit_code == 0, result.output
    assert "the key is <32 hex characters>" in result.stderr and key not in result.output
    logs = tiny.kjob("logs", "tiny")
    assert "the key is <32 hex characters>" in logs.stdout and key not in logs.output
    follow = tiny.kjob("logs", "tiny", "--follow")
    assert "the key is <32 hex characters>" in follow.stdout and key not in follow.output
    log_txt = (tiny.root / "downloads/tiny/local-v1/log.txt").read_text()
    assert "the key is <32 hex characters>" in log_txt and key not in log_txt
    fetched = tiny.kjob("fetch", "tiny")
    log_txt = (tiny.root / "downloads/tiny/local-v1/log.txt").read_text()
    assert fetched.exit_code == 0 and key not in fetched.output + log_txt


def test_a_credential_in_a_runs_error_is_masked_in_its_status_and_the_ledger(tiny, monkeypatch):
    key = new_key()
    monkeypatch.setenv("MY_SERVICE_TOKEN", key)
    tiny.write("src/pkg/job.py", PRINTS_A_KEY.format(first=key[:16], second=key[16:]))
    result = tiny.kjob("push", "tiny", "-p", "fail=true", "--wait")
    assert result.exit_code == 1 and key not in result.output
    status = tiny.kjob("status", "tiny", "--json")
    assert "RuntimeError: refused key <32 hex characters>" in status.stdout and key not in status.output
    assert "<32 hex characters>" in ledger_runs(tiny)[0].state.failure_message
    assert key not in (tiny.root / ".kjob/ledger.sqlite3").read_bytes().decode("utf-8", "replace")
    downloads = tiny.root / "downloads/tiny/local-v1"
    assert downloads.is_dir() and all(key not in p.read_text() for p in downloads.rglob("*") if p.is_file())
