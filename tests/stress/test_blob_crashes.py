"""Artifacts survive races and crashes (issue 9, items 1, 2a and 3), against real processes:

- an upload of some content racing the delete of another module holding the same content
  never loses the upload;
- a kill -9 at each step of keeping or freeing a blob leaves, after the next start, no blob
  that no row refers to, no temp file and no trash, and every committed artifact downloadable;
- a second server on the same data directory refuses to start and harms no upload in flight.
"""

import concurrent.futures
import hashlib
import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from clients.harness import Operator
from live import (ADMIN, PROJECT_DIR, DdiLite, HttpError, clean_environment, free_port,
                  stop_process)

from storage.accounts import hash_password

CRASH_AT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crash_at.py")
RACE_ROUNDS = 300
RACE_PARALLEL = 6


def cheap_accounts():
    """admin/admin with few PBKDF2 rounds: these tests are about blobs, not login cost."""
    return ["[limits]", "password_checks = 8",
            "[accounts]", "admin = " + hash_password("admin", iterations=1000)]


def start(directory, entry=("-m", "ddi_lite")):
    return DdiLite(directory, config_lines=cheap_accounts(), entry=entry)


def new_module(operator, name):
    return operator.call("POST", "/softwaremodules",
                         [{"name": name, "version": "1.0", "type": "os"}])[0]["id"]


def download(operator, module_id, artifact_id):
    path = "/softwaremodules/%d/artifacts/%d/download" % (module_id, artifact_id)
    parts = urllib.parse.urlsplit(operator.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", "/rest/v1" + path, headers={"Authorization": ADMIN})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def blob_dir(directory):
    return directory / "data" / "artifacts"


def stored_sha1s(directory):
    root = blob_dir(directory)
    return sorted(name for shard in os.listdir(root) if len(shard) == 2
                  for name in os.listdir(root / shard))


def leftovers(directory):
    """Temp files and trash, which a clean start must not leave."""
    root = blob_dir(directory)
    return sorted(os.listdir(root / "tmp")) + sorted(os.listdir(root / "trash"))


def test_upload_racing_a_delete_of_the_same_content_loses_nothing(tmp_path):
    server = start(tmp_path / "server")
    operator = Operator(server.url)
    try:
        def round_trip(number):
            content = os.urandom(16 * 1024) + b"%d" % number
            holder = new_module(operator, "holder-%d" % number)
            operator.upload(holder, "fw.bin", content)
            heir = new_module(operator, "heir-%d" % number)
            start_together = threading.Barrier(2)

            def delete_holder():
                start_together.wait()
                # The window that lost uploads: after the upload found the bytes in place,
                # before it recorded its row. Rounds spread the delete across it.
                time.sleep(number % 10 * 0.002)
                operator.call("DELETE", "/softwaremodules/%d" % holder)

            def upload_to_heir():
                start_together.wait()
                return operator.upload(heir, "fw.bin", content)

            with concurrent.futures.ThreadPoolExecutor(2) as pair:
                deleted = pair.submit(delete_holder)
                uploaded = pair.submit(upload_to_heir)
                deleted.result()
                artifact = uploaded.result()
            status, body = download(operator, heir, artifact["id"])
            return status == 200 and body == content

        with concurrent.futures.ThreadPoolExecutor(RACE_PARALLEL) as rounds:
            outcomes = list(rounds.map(round_trip, range(RACE_ROUNDS)))
        lost = outcomes.count(False)
        assert lost == 0, "%d of %d uploads lost their bytes:\n%s" % (lost, RACE_ROUNDS,
                                                                       server.log())
        # Every heir holds its own content; every holder's copy went with the heir's row.
        assert len(stored_sha1s(tmp_path / "server")) == RACE_ROUNDS
    finally:
        server.stop()


UPLOAD_STEPS = ("while-receiving", "before-rename", "after-rename", "after-commit")


def crash_during(directory, step, request):
    """Start a server on `directory` that kills itself at `step`, make `request(operator)`
    fail on that, and wait until the process is gone by SIGKILL."""
    crashing = start(directory, entry=(CRASH_AT, step))
    try:
        with pytest.raises(Exception):
            request(Operator(crashing.url))
        crashing.process.wait(10)
        assert crashing.process.returncode == -9, crashing.log()
    finally:
        crashing.stop()


@pytest.mark.parametrize("step", UPLOAD_STEPS)
def test_kill_during_an_upload_leaves_no_stray_blob(tmp_path, step):
    directory = tmp_path / "server"
    server = start(directory)
    module_id = new_module(Operator(server.url), "fw")
    server.stop()
    content = os.urandom(3 << 20)  # a few reads long, so the crash can come mid-stream
    crash_during(directory, step, lambda operator: operator.upload(module_id, "fw.bin", content))
    server = start(directory)
    try:
        operator = Operator(server.url)
        artifacts = operator.call("GET", "/softwaremodules/%d/artifacts" % module_id)
        if step == "after-commit":  # committed: it must be there, whole
            assert [stored_sha1s(directory)] == [[hashlib.sha1(content).hexdigest()]]
            assert download(operator, module_id, artifacts[0]["id"]) == (200, content)
        else:
            assert artifacts == []
            assert stored_sha1s(directory) == []
        assert leftovers(directory) == []
    finally:
        server.stop()


@pytest.mark.parametrize("step", ("after-trash", "after-commit"))
def test_kill_during_a_delete_keeps_rows_and_bytes_in_step(tmp_path, step):
    directory = tmp_path / "server"
    content = os.urandom(64 * 1024)
    server = start(directory)
    operator = Operator(server.url)
    module_id = new_module(operator, "fw")
    artifact = operator.upload(module_id, "fw.bin", content)
    server.stop()
    crash_during(directory, step,
                 lambda operator: operator.call("DELETE", "/softwaremodules/%d" % module_id))
    server = start(directory)
    try:
        operator = Operator(server.url)
        if step == "after-trash":  # not committed: the module and its bytes are all there
            assert download(operator, module_id, artifact["id"]) == (200, content)
            assert stored_sha1s(directory) == [hashlib.sha1(content).hexdigest()]
        else:
            with pytest.raises(HttpError) as gone:
                operator.call("GET", "/softwaremodules/%d" % module_id)
            assert gone.value.status == 404
            assert stored_sha1s(directory) == []
        assert leftovers(directory) == []
    finally:
        server.stop()


def test_second_server_on_the_same_data_directory_refuses_and_harms_no_upload(tmp_path):
    directory = tmp_path / "server"
    first = start(directory)
    operator = Operator(first.url)
    module_id = new_module(operator, "fw")
    content = os.urandom(1 << 20)
    boundary = "crossing"
    head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="fw.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode("ascii")
    tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")
    upload = http.client.HTTPConnection("127.0.0.1", first.port, timeout=20)
    try:
        upload.putrequest("POST", "/rest/v1/softwaremodules/%d/artifacts" % module_id)
        upload.putheader("Authorization", ADMIN)
        upload.putheader("Content-Type", "multipart/form-data; boundary=" + boundary)
        upload.putheader("Content-Length", str(len(head) + len(content) + len(tail)))
        upload.endheaders()
        upload.send(head + content[:len(content) // 2])
        time.sleep(0.5)  # the first half is in the server's temp file

        second = subprocess.run(
            [sys.executable, "-m", "ddi_lite", "serve", "--config",
             str(directory / "config.ini"), "--host", "127.0.0.1", "--port", str(free_port()),
             "--data-dir", str(directory / "data")],
            cwd=PROJECT_DIR, env=clean_environment(),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        assert second.returncode != 0
        message = second.stderr.strip().splitlines()[-1]
        assert str(directory / "data") in message
        assert str(first.process.pid) in message

        upload.send(content[len(content) // 2:] + tail)
        response = upload.getresponse()
        assert response.status == 201, response.read()
    finally:
        upload.close()
    try:
        artifacts = operator.call("GET", "/softwaremodules/%d/artifacts" % module_id)
        assert download(operator, module_id, artifacts[0]["id"]) == (200, content)
    finally:
        stop_process(first.process)
