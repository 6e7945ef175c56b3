"""Every answer Kaggle could give, and every malformed credential, ends in one line and a
documented exit code: kjob CLI -> kagglesdk -> HTTP -> the emulator, its answers broken on the
wire by the fault switches (mangle_next, bad_gzip_next, redirect_loop_next in faults.py).
"""

import json
import os

import pytest
import requests
from kaggle_fixtures import start_kaggle


@pytest.fixture
def kaggle(tiny, tmp_path, monkeypatch):
    kaggle = start_kaggle(tiny, tmp_path, monkeypatch)
    kaggle.emulator.faults.set(hold=True)  # no notebook runs unless a test releases it
    yield kaggle
    kaggle.emulator.stop()


def one_error_line(kaggle, result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for secret in (kaggle.key, kaggle.key[:8], kaggle.key[-8:]):
        assert secret not in result.output
    return lines[0]


def pushed(kaggle, *args: str):
    result = kaggle.push("tiny", *args)
    assert result.exit_code == 0, result.output
    return result


def finished(kaggle):
    kaggle.emulator.faults.set(hold=False)  # from Python: the next push runs (held ones stay held)
    pushed(kaggle, "--wait")


# -- an empty answer: the protocol's defaults, or one line where kjob needs more ----------

def test_empty_answers_mean_the_defaults_where_the_protocol_allows(kaggle):
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetAcceleratorQuotaStatistics", "answer": {}}])
    assert kaggle.push("tinygpu").exit_code == 0  # no quota known: nothing to refuse on
    pushed(kaggle)
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernelSessionStatus", "answer": {}}])
    status = kaggle.kjob("status", "tiny")
    assert status.exit_code == 6 and "queued" in status.stdout  # a missing status is QUEUED
    kaggle.emulator.faults.set(mangle_next=[{"method": "ListKernelSessionOutput", "answer": {}}])
    logs = kaggle.kjob("logs", "tiny")
    assert logs.exit_code == 0 and logs.stdout == ""
    kaggle.emulator.faults.set(mangle_next=[{"method": "DeleteKernel", "answer": {}}])
    deleted = kaggle.kjob("cancel", "tiny", "--delete-kernel")
    assert deleted.exit_code == 0 and "deleted the Kaggle kernel alice/tiny-kernel" in deleted.stdout


def test_empty_listings_of_a_finished_run_fetch_nothing(kaggle):
    finished(kaggle)
    kaggle.emulator.faults.set(mangle_next=[{"method": "ListKernelSessionOutput", "answer": {}},
                                            {"method": "ListKernelFiles", "answer": {}}])
    result = kaggle.kjob("fetch", "tiny", "--output", "--version", "1")
    assert result.exit_code == 0, result.output


def test_an_empty_answer_lacking_what_kjob_needs_is_one_line(kaggle):
    kaggle.emulator.faults.set(mangle_next=[{"method": "SaveKernel", "answer": {}}])
    line = one_error_line(kaggle, kaggle.push("tiny"), 7)
    assert "Kaggle accepted the push of alice/tiny-kernel but gave no version number" in line
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernel", "answer": {}}])
    line = one_error_line(kaggle, kaggle.push("tiny"), 7)
    assert ("Kaggle's answer to GetKernel for kernel alice/tiny-kernel was malformed: it has no metadata, "
            "which kjob needs") in line


# -- wrongly typed answers -------------------------------------------------------------

MALFORMED = [
    ("SaveKernel", {"versionNumber": "abc"}, ["push"],
     "Kaggle's answer to SaveKernel for the push of alice/tiny-kernel was malformed: versionNumber should be a "
     "whole number, not the string 'abc'; Kaggle may have acted on it"),
    ("SaveKernel", {"versionNumber": 0}, ["push"], "versionNumber should be at least 1, not 0"),
    ("SaveKernel", {"versionNumber": 2, "invalidDatasetSources": "x"}, ["push"],
     "invalidDatasetSources should be a list, not the string 'x'"),
    ("GetKernel", [], ["push"], "Kaggle's answer to GetKernel for kernel alice/tiny-kernel was malformed: "
                                "the answer should be a JSON object, not a list"),
    ("GetKernel", "a string", ["push"], "the answer should be a JSON object, not the string 'a string'"),
    ("GetKernel", {"metadata": {"datasetDataSources": [5]}}, ["push"],
     "metadata.datasetDataSources[0] should be a string, not the number 5"),
    ("GetKernel", {"metadata": {"currentVersionNumber": True}}, ["logs"],
     "metadata.currentVersionNumber should be a whole number, not true"),
    ("GetKernelSessionStatus", {"status": 5}, ["status"],
     "Kaggle's answer to GetKernelSessionStatus for kernel alice/tiny-kernel v1 was malformed: status should be "
     "one of QUEUED, RUNNING"),
    ("GetKernelSessionStatus", {"status": "BOGUS"}, ["status"], "status should be one of"),
    ("GetKernelSessionStatus", {"status": ""}, ["status"], "not the string ''"),
    ("GetKernelSessionStatus", {"status": "ERROR", "failureMessage": {"a": 1}}, ["status"],
     "failureMessage should be a string, not a JSON object"),
    ("ListKernelSessionOutput", {"files": "x"}, ["fetch"],
     "Kaggle's answer to ListKernelSessionOutput for the output of alice/tiny-kernel v1 was malformed: files should "
     "be a list"),
    ("ListKernelSessionOutput", {"files": [5]}, ["fetch"], "files[0] should be a JSON object, not the number 5"),
    ("ListKernelSessionOutput", {"files": [{"url": "http://x/y"}]}, ["fetch"], "files[0] has no fileName"),
    ("ListKernelSessionOutput", {"log": 123}, ["logs"], "log should be a string, not the number 123"),
    ("ListKernelSessionOutput", {"nextPageToken": ["2"]}, ["fetch"], "nextPageToken should be a string, not a list"),
    ("ListKernelFiles", {"files": [{"name": "a.txt", "size": "12"}]}, ["fetch"],
     "Kaggle's answer to ListKernelFiles for the files of alice/tiny-kernel v1 was malformed: files[0].size "
     "should be a whole number, not the string '12'"),
    ("ListKernelFiles", {"files": [{"name": "a.txt", "size": -1}]}, ["fetch"], "files[0].size should be at least 0"),
    ("GetAcceleratorQuotaStatistics", {"gpuQuota": {"timeUsed": 5}}, ["push-gpu"],
     "Kaggle's answer to GetAcceleratorQuotaStatistics for the account's accelerator quota was malformed: "
     "gpuQuota.timeUsed should be a duration string, not the number 5"),
    ("GetAcceleratorQuotaStatistics", {"gpuQuota": {"totalTimeAllowed": "lots"}}, ["push-gpu"],
     "gpuQuota.totalTimeAllowed should be a duration string, not the string 'lots'"),
    ("DeleteKernel", {"errorMessage": ["no"]}, ["cancel", "--delete-kernel"],
     "Kaggle's answer to DeleteKernel for kernel alice/tiny-kernel was malformed: errorMessage should be a string"),
]


@pytest.mark.parametrize("method,answer,command,expected", MALFORMED,
                         ids=[f"{m}-{json.dumps(a)[:30]}" for m, a, _, _ in MALFORMED])
def test_a_wrongly_typed_answer_is_one_line_naming_the_call(kaggle, method, answer, command, expected):
    if command[0] not in ("push", "push-gpu"):
        pushed(kaggle)
    kaggle.emulator.faults.set(mangle_next=[{"method": method, "answer": answer}])
    if command[0] == "push":
        result = kaggle.push("tiny")
    elif command[0] == "push-gpu":
        result = kaggle.push("tinygpu")
    else:
        result = kaggle.kjob(command[0], "tiny", *command[1:])
    assert expected in one_error_line(kaggle, result, 7)
    assert kaggle.emulator.faults.mangle_next == []  # the broken answer was the one read


def test_a_page_that_is_not_json_is_one_line_and_not_retried(kaggle):
    pushed(kaggle)
    page = "<!DOCTYPE html><html><body>Please sign in</body></html>"
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernelSessionStatus", "body": page,
                                             "content_type": "text/html; charset=utf-8"}])
    asked = len(kaggle.emulator.requests("GetKernelSessionStatus"))
    line = one_error_line(kaggle, kaggle.kjob("status", "tiny"), 7)
    assert line == (f"error: Kaggle's answer to GetKernelSessionStatus for kernel alice/tiny-kernel v1 was not JSON "
                    f"(text/html, {len(page)} bytes)")
    assert len(kaggle.emulator.requests("GetKernelSessionStatus")) == asked + 1
    kaggle.emulator.faults.set(mangle_next=[{"method": "SaveKernel", "body": b"\xff\xfe{".decode("latin-1")}])
    line = one_error_line(kaggle, kaggle.push("tiny"), 7)
    assert "Kaggle's answer to SaveKernel for the push of alice/tiny-kernel was not JSON" in line
    assert "Kaggle may have acted on it" in line
    assert len(kaggle.emulator.requests("SaveKernel")) == 2  # the push was not sent again


def test_an_error_inside_a_200_keeps_its_code(kaggle):
    pushed(kaggle)
    kaggle.emulator.faults.set(mangle_next=[{"method": "GetKernelSessionStatus",
                                             "answer": {"code": 404, "message": "Kernel gone"}}])
    line = one_error_line(kaggle, kaggle.kjob("status", "tiny"), 4)
    assert "Kaggle has no kernel alice/tiny-kernel v1 (HTTP 404)" in line


# -- broken encodings and redirect loops ----------------------------------------------

def test_an_api_answer_that_is_not_the_gzip_it_says_is_one_line(kaggle):
    pushed(kaggle)
    kaggle.emulator.faults.set(bad_gzip_next=["GetKernelSessionStatus"])
    line = one_error_line(kaggle, kaggle.kjob("status", "tiny"), 7)
    assert line == ("error: Kaggle's answer to GetKernelSessionStatus for kernel alice/tiny-kernel v1 could not be "
                    "decoded: its body is not in the Content-Encoding it declares")
    assert kaggle.kjob("status", "tiny").exit_code == 6  # used up: the next answer is fine


def test_a_download_that_is_not_the_gzip_it_says_is_one_line_and_leaves_nothing(kaggle):
    finished(kaggle)  # which fetched result.json already
    (kaggle.session("tiny-kernel", 1).paths.working_dir / "extra.bin").write_bytes(os.urandom(4096))
    kaggle.emulator.faults.set(bad_gzip_next=["download"])
    line = one_error_line(kaggle, kaggle.kjob("fetch", "tiny", "--output"), 7)
    assert "the server's answer could not be decoded: its body is not in the Content-Encoding it declares" in line
    assert kaggle.emulator.faults.bad_gzip_next == []
    assert not [p for p in (kaggle.ws.root / "downloads").rglob("*") if p.name.endswith(".part")]
    assert not (kaggle.ws.root / "downloads/tiny/v1/output/extra.bin").exists()


def test_redirect_loops_on_the_api_and_on_a_download_are_one_line(kaggle):
    pushed(kaggle)
    kaggle.emulator.faults.set(redirect_loop_next=["GetKernelSessionStatus"])
    line = one_error_line(kaggle, kaggle.kjob("status", "tiny"), 7)
    assert line == ("error: Kaggle's answer to GetKernelSessionStatus for kernel alice/tiny-kernel v1 redirected "
                    "in a loop (more than 30 redirects)")
    kaggle.emulator.faults.set(redirect_loop_next=["download"])
    kaggle.emulator.store.mark_released()
    kaggle.wait_for_session("tiny-kernel", 1, "complete")
    line = one_error_line(kaggle, kaggle.kjob("fetch", "tiny", "--output"), 7)
    assert "redirected in a loop (more than 30 redirects)" in line and "downloading " in line


def test_the_switches_can_be_set_over_http(kaggle):
    url = f"{kaggle.emulator.url}/_emulator/faults"
    assert requests.post(url, json={"mangle_next": [{"method": "GetKernel"}]}, timeout=10).status_code == 400
    answer = requests.post(url, json={"mangle_next": [{"method": "GetKernel", "answer": None}],
                                      "bad_gzip_next": ["download"], "redirect_loop_next": ["SaveKernel"]}, timeout=10)
    assert answer.status_code == 200
    faults = requests.get(url, timeout=10).json()
    assert (faults["mangle_next"], faults["bad_gzip_next"], faults["redirect_loop_next"]) == (
        [{"method": "GetKernel", "answer": None}], ["download"], ["SaveKernel"])


# -- malformed credentials: one line naming where they came from, nothing sent --------

def _env(**values):
    return lambda kaggle, monkeypatch: [monkeypatch.setenv(k, v(kaggle)) for k, v in values.items()]


def _file(name: str, content, mode: int = 0o600, point_token: bool = False):
    def write(kaggle, monkeypatch):
        path = kaggle.config_dir / name
        data = content(kaggle)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        os.chmod(path, mode)
        if name != "kaggle.json":
            (kaggle.config_dir / "kaggle.json").unlink()
        if point_token:
            monkeypatch.setenv("KAGGLE_API_TOKEN", str(path))
    return write


def _json(value):
    return _file("kaggle.json", lambda k: json.dumps(value(k) if callable(value) else value))


def _split(kaggle, middle: str) -> str:
    return kaggle.key[:16] + middle + kaggle.key[16:]


CREDENTIALS = {
    "key-not-latin-1": (_env(KAGGLE_USERNAME=lambda k: "alice", KAGGLE_KEY=lambda k: _split(k, "ключ")),
                        "KAGGLE_KEY: the key contains a character outside ASCII"),
    "key-latin-1-letter": (_env(KAGGLE_USERNAME=lambda k: "alice", KAGGLE_KEY=lambda k: _split(k, "é")),
                           "KAGGLE_KEY: the key contains a character outside ASCII"),
    "key-crlf": (_env(KAGGLE_USERNAME=lambda k: "alice", KAGGLE_KEY=lambda k: _split(k, "\r\n")),
                 "KAGGLE_KEY: the key contains a line break or another control character"),
    "key-control": (_env(KAGGLE_USERNAME=lambda k: "alice", KAGGLE_KEY=lambda k: _split(k, "\x01")),
                    "KAGGLE_KEY: the key contains a line break or another control character"),
    "key-space-inside": (_env(KAGGLE_USERNAME=lambda k: "alice", KAGGLE_KEY=lambda k: _split(k, " ")),
                         "KAGGLE_KEY: the key has whitespace inside it"),
    "username-space": (_env(KAGGLE_USERNAME=lambda k: "ali ce", KAGGLE_KEY=lambda k: k.key),
                       "KAGGLE_USERNAME: the username has whitespace inside it"),
    "username-colon": (_env(KAGGLE_USERNAME=lambda k: "alice:x", KAGGLE_KEY=lambda k: k.key),
                       "KAGGLE_USERNAME: the username contains ':'"),
    "username-newline": (_env(KAGGLE_USERNAME=lambda k: "ali\nce", KAGGLE_KEY=lambda k: k.key),
                         "KAGGLE_USERNAME: the username contains a line break or another control character"),
    "username-empty": (_env(KAGGLE_USERNAME=lambda k: "  ", KAGGLE_KEY=lambda k: k.key),
                       "KAGGLE_KEY is set but KAGGLE_USERNAME is not"),
    "token-newline": (_env(KAGGLE_API_TOKEN=lambda k: _split(k, "\n")),
                      "KAGGLE_API_TOKEN: the token contains a line break or another control character"),
    "token-tab": (_env(KAGGLE_API_TOKEN=lambda k: _split(k, "\t")),
                  "KAGGLE_API_TOKEN: the token contains a line break or another control character"),
    "token-file-not-utf8": (_file("token.txt", lambda k: k.key.encode() + b"\xff\xfe", point_token=True),
                            "~/.kaggle/token.txt (named by KAGGLE_API_TOKEN) is not UTF-8 text"),
    "token-file-crlf-inside": (_file("token.txt", lambda k: _split(k, "\r\n") + "\n", point_token=True),
                               "~/.kaggle/token.txt (named by KAGGLE_API_TOKEN): the token contains a line break"),
    "access-token-not-latin-1": (_file("access_token", lambda k: _split(k, "→")),
                                 "~/.kaggle/access_token: the token contains a character outside ASCII"),
    "access-token-not-utf8": (_file("access_token", lambda k: b"\x80" + k.key.encode()),
                              "~/.kaggle/access_token is not UTF-8 text"),
    "json-a-list": (_json(lambda k: ["alice", k.key]), "~/.kaggle/kaggle.json is not a JSON object"),
    "json-a-string": (_json(lambda k: k.key), "~/.kaggle/kaggle.json is not a JSON object"),
    "json-key-a-number": (_json({"username": "alice", "key": 12345678}),
                          "~/.kaggle/kaggle.json: its key is not a string"),
    "json-username-a-list": (_json(lambda k: {"username": ["alice"], "key": k.key}),
                             "~/.kaggle/kaggle.json: its username is not a string"),
    "json-username-empty": (_json(lambda k: {"username": "", "key": k.key}),
                            "~/.kaggle/kaggle.json lacks a username"),
    "json-key-newline": (_json(lambda k: {"username": "alice", "key": _split(k, "\n")}),
                         "~/.kaggle/kaggle.json: the key contains a line break or another control character"),
    "json-key-not-latin-1": (_json(lambda k: {"username": "alice", "key": _split(k, "中")}),
                             "~/.kaggle/kaggle.json: the key contains a character outside ASCII"),
    "json-not-utf8": (_file("kaggle.json", lambda k: b'{"username": "alice", "key": "\xff' + k.key.encode() + b'"}'),
                      "~/.kaggle/kaggle.json is not UTF-8 text"),
}


@pytest.mark.parametrize("name", list(CREDENTIALS))
def test_a_malformed_credential_is_one_line_naming_its_place_and_nothing_is_sent(kaggle, monkeypatch, name):
    write, expected = CREDENTIALS[name]
    write(kaggle, monkeypatch)
    result = kaggle.push("tiny")
    line = one_error_line(kaggle, result, 7)
    assert expected in line
    assert kaggle.emulator.http_requests == []
    assert kaggle.emulator.store.requests == []
