"""The emulator under hostile or heavy callers, over real HTTP to a real server: nesting too
deep for its JSON parser (400), an absurd Content-Length (413, before reading), 50 parallel
clients (no resets) and a request log that stays bounded however many requests arrive."""

import json
import secrets
import socket
import threading

import pytest
import requests

from kjob.emulator import server as emulator_server
from kjob.emulator.server import Emulator

API = "/api/v1/kernels.KernelsApiService"
BLOBS = "/api/v1/blobs.BlobApiService"


@pytest.fixture
def emulator(tmp_path):
    key = secrets.token_hex(16)
    with Emulator(tmp_path / "emulator", users={"alice": key}) as running:
        running.auth = ("alice", key)
        yield running


def raw(emulator, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send `request` as it is on one connection; the answer's (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=timeout) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"the connection closed without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(status_line.split()[1]), headers, body


def post(path: str, body: bytes, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *extra]
    if not any(line.lower().startswith(("content-length:", "transfer-encoding:")) for line in extra):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def still_answers(emulator) -> None:
    answer = requests.post(emulator.url + API + "/ListKernels", json={"pageSize": 5}, auth=emulator.auth, timeout=10)
    assert answer.status_code == 200, answer.text


# -- 4. nesting too deep -----------------------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                  b'{"pageSize": ' + b"[" * 500 + b"]" * 500 + b"}"])
def test_json_nested_too_deep_is_a_400_and_the_server_goes_on(emulator, body):
    code, headers, answer = raw(emulator, post(API + "/ListKernels", body))
    assert code == 400, answer
    message = json.loads(answer)["message"]
    assert "nested" in message and str(emulator_server.MAX_JSON_DEPTH) in message
    still_answers(emulator)


def test_a_body_that_is_not_json_or_not_an_object_is_a_400(emulator):
    for body in (b"{", b"[1, 2]", b"\xff\xfe", b'"text"'):
        code, _, answer = raw(emulator, post(API + "/ListKernels", body))
        assert code == 400, (body, answer)
    still_answers(emulator)


# -- 5. an absurd Content-Length --------------------------------------------------------

def test_an_absurd_content_length_is_a_413_before_the_body_is_read(emulator):
    code, headers, answer = raw(emulator, post(API + "/ListKernels", b"", "Content-Length: 99999999999"))
    assert code == 413, answer
    assert headers.get("connection") == "close"
    assert f"{emulator_server.MAX_JSON_BODY}" in json.loads(answer)["message"]
    still_answers(emulator)


@pytest.mark.parametrize("length", ["-5", "12abc", "1e3"])
def test_a_content_length_that_is_not_a_count_is_a_400(emulator, length):
    code, _, answer = raw(emulator, post(API + "/ListKernels", b"{}", f"Content-Length: {length}"))
    assert code == 400, answer
    still_answers(emulator)


def start_upload(emulator, length: int) -> str:
    started = requests.post(emulator.url + BLOBS + "/StartBlobUpload", auth=emulator.auth, timeout=10,
                            json={"type": "DATASET", "name": "big.bin", "contentLength": length})
    assert started.status_code == 200, started.text
    return started.json()["createUrl"].removeprefix(emulator.url)


def put(path: str, *extra: str, body: bytes = b"") -> bytes:
    lines = [f"PUT {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/octet-stream", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_a_blob_upload_larger_than_json_bodies_streams_to_disk(emulator):
    size = emulator_server.MAX_JSON_BODY + 1024  # over the JSON bound: uploads have their own
    path = start_upload(emulator, size)
    answer = requests.put(emulator.url + path, data=b"x" * size, timeout=60,
                          headers={"Content-Type": "application/octet-stream"})
    assert answer.status_code == 200, answer.text


def test_an_upload_longer_than_its_reservation_is_a_413_before_reading(emulator):
    path = start_upload(emulator, 10)
    code, headers, answer = raw(emulator, put(path, "Content-Length: 99999999999"))
    assert code == 413 and headers.get("connection") == "close", answer
    assert "10 bytes" in json.loads(answer)["message"]
    # Chunked, with an absurd chunk size: stopped once past the reserved length, nothing kept.
    code, _, answer = raw(emulator, put(path, "Transfer-Encoding: chunked", body=b"fffffffffff\r\n" + b"x" * 64))
    assert code == 413, answer
    code, _, answer = raw(emulator, put(path, "Transfer-Encoding: chunked", body=b"zz\r\n"))
    assert code == 400, answer
    unknown = "/upload/" + "0" * 32
    code, _, answer = raw(emulator, put(unknown, "Content-Length: 99999999999"))
    assert code in (404, 413), answer
    # The reservation is still good for the right number of bytes.
    assert requests.put(emulator.url + path, data=b"y" * 10, timeout=10).status_code == 200
    still_answers(emulator)


# -- 6. fifty parallel clients --------------------------------------------------------------

def test_fifty_parallel_clients_get_every_answer(emulator):
    errors, codes, lock = [], [], threading.Lock()
    start = threading.Barrier(50)

    def client(index: int) -> None:
        session = requests.Session() if index % 2 else requests  # half keep-alive, half a connection each
        try:
            start.wait(30)
            for _ in range(16):
                answer = session.post(emulator.url + API + "/ListKernels", json={"pageSize": 5},
                                      auth=emulator.auth, timeout=30)
                with lock:
                    codes.append(answer.status_code)
        except Exception as exc:  # noqa: BLE001 - every failure counts, whatever its kind
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and codes == [200] * 800, (errors[:3], len(errors), len(codes))


# -- 7. bounded memory ----------------------------------------------------------------------

def test_the_request_log_is_bounded_and_keeps_the_latest(tmp_path):
    assert 0 < emulator_server.REQUEST_LOG_LIMIT <= 100_000  # the default: a few MB at most
    limit, key = 40, secrets.token_hex(16)
    with Emulator(tmp_path / "emulator", users={"alice": key}, request_log_limit=limit) as emulator, \
            requests.Session() as session:
        session.auth = ("alice", key)
        for index in range(3 * limit):
            answer = session.post(emulator.url + API + "/ListKernels", json={"pageSize": 5, "search": f"n{index}"},
                                  timeout=10)
            assert answer.status_code == 200
            assert session.get(emulator.url + "/outputs/" + "0" * 32, timeout=10).status_code == 404
        kept = emulator.requests("ListKernels")
        assert len(kept) == limit and [b["search"] for b in kept] == [f"n{i}" for i in range(2 * limit, 3 * limit)]
        assert len(emulator.store.requests) == limit and len(emulator.http_requests) == limit
        assert len(emulator.downloads) == limit
        served = requests.get(emulator.url + "/_emulator/requests", timeout=10).json()
        assert len(served) == limit and served[-1]["body"]["search"] == f"n{3 * limit - 1}"
        assert emulator.store.requests != [] and emulator.http_requests[-1] == ("GET", "/outputs/" + "0" * 32)
