"""Worker processes ([server] workers = 2, service/workers.py) on one data directory, against
real processes: both serve and share new connections; a configuration change or a console
sign-in through one holds through the other within a second; writes through both at once all
succeed; systemd hears the master; a stop stops all, gracefully; an upload in flight survives
another process starting. Which worker answered a connection is told by /proc
(live.serving_pid). The crash under load is in tests/stress/test_worker_crashes.py."""

import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from clients.harness import Operator
from live import (ADMIN, PROJECT_DIR, DdiLite, child_pids, clean_environment, free_port,
                  once_holder, serving_pid, stop_process, wait_until)
from test_graceful_stop import ARTIFACT, SlowDownload, refuses_connections, seeded

import console
import ddi_lite
from service import configuration
from storage.accounts import hash_password


def worker_lines(workers=2):
    """The settings of these tests: admin/admin with few PBKDF2 rounds (they are about
    processes, not login cost)."""
    return ["workers = %d" % workers, "[limits]", "password_checks = 8",
            "[accounts]", "admin = " + hash_password("admin", iterations=1000)]


def start(directory, workers=2):
    server = DdiLite(directory, config_lines=worker_lines(workers), threads=4)
    try:
        wait_until(lambda: len(child_pids(server.process.pid)) == workers, 10, "the workers")
        for held in connections_to_each(server).values():  # every worker serves
            held[0].close()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def server(tmp_path):
    server = start(tmp_path / "server")
    yield server
    server.stop()


def call(connection, method, path, document=None, headers=None):
    """One request on a kept-alive connection: (status, JSON answer or None)."""
    body = None if document is None else json.dumps(document).encode("utf-8")
    all_headers = {"Authorization": ADMIN, "Accept": "application/json"}
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, (json.loads(data.decode("utf-8")) if data else None)


def connections_to_each(server, per_worker=1):
    """{worker pid: [kept-alive connections that worker serves]}, `per_worker` each."""
    pids = child_pids(server.process.pid)
    pinned = {pid: [] for pid in pids}
    for _ in range(400):
        if all(len(held) >= per_worker for held in pinned.values()):
            return pinned
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert call(connection, "GET", "/")[0] == 200
        pid = serving_pid(connection, pids)
        if pid in pinned and len(pinned[pid]) < per_worker:
            pinned[pid].append(connection)
        else:
            connection.close()
    raise AssertionError("new connections did not reach every worker: %r"
                         % {pid: len(held) for pid, held in pinned.items()})


def one_each(server):
    """A connection to each of two workers."""
    first, second = (held[0] for held in connections_to_each(server).values())
    return first, second


def poll(connection, controller_id, token):
    return call(connection, "GET", "/DEFAULT/controller/v1/" + controller_id,
                headers={"Authorization": "TargetToken " + token})


def test_two_workers_answer_from_two_processes_besides_the_master(server):
    pinned = connections_to_each(server)
    assert len(pinned) == 2
    assert server.process.pid not in pinned


def test_new_connections_are_shared_evenly_between_the_workers(server):
    pids = child_pids(server.process.pid)
    held = []
    for _ in range(8):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert call(connection, "GET", "/")[0] == 200
        held.append(connection)
    served_by = [serving_pid(connection, pids) for connection in held]
    assert sorted(served_by.count(pid) for pid in pids) == [4, 4], served_by


def test_workers_auto_is_one_per_core_and_zero_is_refused():
    setting = next(s for s in ddi_lite.SETTINGS if s.key == "workers")
    assert setting.default == 1
    assert configuration.convert(setting, "auto") == configuration.cores() >= 1
    assert configuration.convert(setting, "3") == 3
    with pytest.raises(configuration.ConfigError):
        configuration.convert(setting, "0")


def test_a_polling_time_set_through_one_worker_is_seen_through_the_other_within_a_second(
        server):
    first, second = one_each(server)
    assert call(first, "POST", "/rest/v1/targets",
                [{"controllerId": "dev-1", "securityToken": "tok-1"}])[0] == 201
    status, answer = poll(second, "dev-1", "tok-1")
    assert (status, answer["config"]["polling"]["sleep"]) == (200, "00:05:00")

    assert call(first, "PUT", "/rest/v1/system/configs/pollingTime",
                {"value": "00:00:40"})[0] == 204
    wait_until(lambda: poll(second, "dev-1", "tok-1")[1]["config"]["polling"]["sleep"]
               == "00:00:40", 1.0, "the other worker's polling time")


def test_target_tokens_switched_off_through_one_worker_are_refused_by_the_other_within_a_second(
        server):
    first, second = one_each(server)
    assert call(first, "POST", "/rest/v1/targets",
                [{"controllerId": "dev-1", "securityToken": "tok-1"}])[0] == 201
    assert poll(second, "dev-1", "tok-1")[0] == 200

    assert call(first, "PUT", "/rest/v1/system/configs/authentication.targettoken.enabled",
                {"value": False})[0] == 204
    wait_until(lambda: poll(second, "dev-1", "tok-1")[0] == 401, 1.0,
               "the other worker's refusal")


def test_writes_through_two_workers_at_once_all_succeed(server):
    pinned = connections_to_each(server, per_worker=4)
    answers = []

    def create(connection, prefix):
        for number in range(40):
            status, _ = call(connection, "POST", "/rest/v1/targets",
                             [{"controllerId": "%s-%d" % (prefix, number)}])
            answers.append(status)
            answers.append(call(connection, "PUT", "/rest/v1/system/configs/pollingTime",
                                {"value": "00:00:%02d" % (30 + number % 20)})[0])

    threads = [threading.Thread(target=create, args=(connection, "w%d-c%d" % (pid, index)))
               for pid, held in pinned.items() for index, connection in enumerate(held)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(set(answers)) == [201, 204], server.log()
    assert len(answers) == 2 * 8 * 40
    connection = next(iter(pinned.values()))[0]
    assert call(connection, "GET", "/rest/v1/targets?limit=1")[1]["total"] == 8 * 40
    assert "locked" not in server.log()


def test_sigterm_to_the_master_stops_every_worker_and_exits_0(server):
    workers = child_pids(server.process.pid)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(15) == 0
    assert not any(alive(pid) for pid in workers)
    assert "stopping 2 workers" in server.log()


def test_workers_whose_master_is_killed_stop_by_themselves(server):
    workers = child_pids(server.process.pid)
    server.process.kill()
    server.process.wait(5)
    wait_until(lambda: not any(alive(pid) for pid in workers), 10, "the orphaned workers' end")


def alive(pid):
    """Whether a process runs (an unreaped zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_systemd_hears_ready_from_the_master_once_both_workers_serve_and_stopping(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(15)
    port = free_port()
    config = tmp_path / "config.ini"
    config.write_text("\n".join(["[server]"] + worker_lines()) + "\n")
    with open(str(tmp_path / "server.log"), "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ddi_lite", "serve", "--config", str(config),
             "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=PROJECT_DIR, env=clean_environment(NOTIFY_SOCKET=str(tmp_path / "notify")),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready, ready_pid = receive_with_sender(listener)
        workers = child_pids(process.pid)
        process.send_signal(signal.SIGTERM)
        stopping, stopping_pid = receive_with_sender(listener)
        assert process.wait(15) == 0
    finally:
        stop_process(process)
        listener.close()
    server_log = (tmp_path / "server.log").read_text()
    assert ready.decode().splitlines() == [
        "READY=1", "STATUS=Serving on http://127.0.0.1:%d with 2 workers" % port], server_log
    assert ready_pid == stopping_pid == process.pid
    assert len(workers) == 2
    assert server_log.count("ddi-lite listening on") == 1
    assert stopping.decode().splitlines()[0] == "STOPPING=1"


def receive_with_sender(listener):
    """A datagram and the pid of the process that sent it (SCM_CREDENTIALS)."""
    size = struct.calcsize("3i")
    data, ancillary, _, _ = listener.recvmsg(4096, socket.CMSG_SPACE(size))
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return data, struct.unpack("3i", value[:size])[0]
    raise AssertionError("no sender credentials with %r" % data)


def test_an_upload_in_flight_survives_another_worker_and_another_server_starting(tmp_path):
    directory = tmp_path / "server"
    server = start(directory)
    try:
        pinned = connections_to_each(server)
        (uploader_pid, (upload,)), (other_pid, _) = pinned.items()
        status, modules = call(upload, "POST", "/rest/v1/softwaremodules",
                               [{"name": "fw", "version": "1.0", "type": "os"}])
        module_id = modules[0]["id"]
        content = os.urandom(1 << 20)
        boundary = "crossing"
        head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="fw.bin"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode("ascii")
        tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")
        upload.putrequest("POST", "/rest/v1/softwaremodules/%d/artifacts" % module_id)
        upload.putheader("Authorization", ADMIN)
        upload.putheader("Content-Type", "multipart/form-data; boundary=" + boundary)
        upload.putheader("Content-Length", str(len(head) + len(content) + len(tail)))
        upload.endheaders()
        upload.send(head + content[:len(content) // 2])
        # Waitress holds the body until it is whole, and the blob store's temp file lives
        # for the moment the app copies it: these stand for the temp files of an upload that
        # far along in the uploading worker, and of one in the worker about to die.
        temp_dir = directory / "data" / "artifacts" / "tmp"
        in_flight = temp_dir / ("upload-%d-inflight" % uploader_pid)
        in_flight.write_bytes(b"half")
        orphan = temp_dir / ("upload-%d-orphan" % other_pid)
        orphan.write_bytes(b"half")

        # A worker that starts again after a crash, and a second server that is refused.
        os.kill(other_pid, signal.SIGKILL)
        wait_until(lambda: len(set(child_pids(server.process.pid)) - {other_pid}) == 2, 10,
                   "the worker's restart")
        second = subprocess.run(
            [sys.executable, "-m", "ddi_lite", "serve", "--config",
             str(directory / "config.ini"), "--host", "127.0.0.1", "--port", str(free_port()),
             "--data-dir", str(directory / "data")],
            cwd=PROJECT_DIR, env=clean_environment(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=20)
        assert second.returncode == 2
        assert "in use by ddi-lite process %d" % server.process.pid in second.stderr
        assert os.listdir(str(temp_dir)) == [in_flight.name]

        upload.send(content[len(content) // 2:] + tail)
        response = upload.getresponse()
        assert response.status == 201, response.read()
        response.read()
        status, artifacts = call(upload, "GET",
                                 "/rest/v1/softwaremodules/%d/artifacts" % module_id)
        upload.request("GET", "/rest/v1/softwaremodules/%d/artifacts/%d/download"
                       % (module_id, artifacts[0]["id"]), headers={"Authorization": ADMIN})
        assert upload.getresponse().read() == content
        assert serving_pid(upload, [uploader_pid]) == uploader_pid
    finally:
        server.stop()


def test_a_port_in_use_stops_the_master_before_it_opens_the_database(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "ddi_lite", "serve", "--config", os.devnull, "--workers", "2",
             "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=PROJECT_DIR, env=clean_environment(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "Address already in use" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "data" / "ddi-lite.sqlite3").exists()


def test_after_sigterm_to_the_master_a_download_finishes_and_new_connections_are_refused(
        tmp_path):
    module_id = seeded(tmp_path)
    server = DdiLite(tmp_path, ["stop_timeout = 10"] + worker_lines(), threads=4)
    try:
        wait_until(lambda: len(child_pids(server.process.pid)) == 2, 10, "the workers")
        connections_to_each(server)  # both serve: one still starting would simply end
        download = SlowDownload(server, module_id)
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(server.port), 2, "refusing new connections")
        assert server.process.poll() is None, server.log()
        body = download.read_to_end()
        code = server.process.wait(5)
    finally:
        server.stop()
    assert body == ARTIFACT, (len(body), server.log())
    assert code == 0, server.log()
    assert server.log_path.read_text().count("stopping: no new connections") == 2


def form_request(connection, path, cookie, fields=None):
    """A console request (a form POST when `fields`): (status, headers, body text)."""
    headers = {"Cookie": cookie} if cookie else {}
    body = None
    if fields is not None:
        body = urllib.parse.urlencode(fields)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request("POST" if fields is not None else "GET", path, body=body,
                       headers=headers)
    response = connection.getresponse()
    return response.status, response.headers, response.read().decode("utf-8")


def cookie_value(headers, name):
    for value in headers.get_all("Set-Cookie") or ():
        if value.startswith(name + "="):
            return value.split(";")[0].split("=", 1)[1]
    raise AssertionError("no cookie %s in %r" % (name, headers.get_all("Set-Cookie")))


def test_a_console_sign_in_through_one_worker_holds_through_the_other_until_sign_out(server):
    first, second = one_each(server)
    _, headers, _ = form_request(first, "/ui/signin", None)
    token = cookie_value(headers, "ddi_lite_signin")
    status, headers, _ = form_request(first, "/ui/signin", "ddi_lite_signin=" + token,
                                      {"user": "admin", "password": "admin", "csrf": token})
    assert status == 303
    session = "ddi_lite_console=" + cookie_value(headers, "ddi_lite_console")

    status, _, page = form_request(second, "/ui", session)
    assert status == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert form_request(second, "/ui/signout", session, {"csrf": csrf})[0] == 303

    status, headers, _ = form_request(first, "/ui", session)
    assert status == 303 and "/ui/signin" in headers["Location"]


class OneAccount:
    hashes = {"admin": "hash"}


def test_shared_console_sessions_end_when_idle_when_the_account_changes_and_are_bounded(
        tmp_path):
    directory = str(tmp_path / "sessions")
    one, other = (console.sessions.Sessions(OneAccount, 60, directory) for _ in range(2))
    session_id, session = one.start("admin")
    assert other.find(session_id).csrf == session.csrf
    path = os.path.join(directory, os.listdir(directory)[0])
    os.utime(path, (time.time() - 61, time.time() - 61))
    assert other.find(session_id) is None and not os.path.exists(path)

    session_id, _ = one.start("admin")
    OneAccount.hashes = {"admin": "changed"}
    try:
        assert other.find(session_id) is None
    finally:
        OneAccount.hashes = {"admin": "hash"}

    console.sessions.forget_all(directory)
    one.max_sessions = 2
    ids = [one.start("admin")[0] for _ in range(2)]
    for age, session_id in enumerate(reversed(ids), 1):  # the first, the longest unused
        os.utime(os.path.join(directory, one._key(session_id).hex()),
                 (time.time() - age, time.time() - age))
    newest, _ = one.start("admin")
    assert len(os.listdir(directory)) == 2
    assert other.find(ids[0]) is None
    assert other.find(ids[1]) and other.find(newest)


def test_feedback_through_the_worker_without_the_rollout_lock_starts_the_next_group_in_time(
        tmp_path):
    interval = 3
    server = DdiLite(tmp_path / "server", threads=4, config_lines=worker_lines() + [
        "[scheduler]", "rollout_interval = %d" % interval,
        "[ddi]", "gateway_token_auth = true", "gateway_token = gw"])
    operator = Operator(server.url)
    try:
        wait_until(lambda: len(child_pids(server.process.pid)) == 2, 10, "the workers")
        for number in range(4):
            operator.add_target("dev-%d" % number)
        rollout_id = operator.call("POST", "/rollouts", {
            "name": "wave", "distributionSetId": operator.distribution("fw", {}),
            "targetFilterQuery": "controllerId==dev-*", "amountGroups": 2})["id"]
        operator.call("POST", "/rollouts/%d/start" % rollout_id)

        def groups():
            return [group["status"] for group in operator.call(
                "GET", "/rollouts/%d/deploygroups" % rollout_id)["content"]]

        wait_until(lambda: groups() == ["running", "scheduled"], interval + 5, "group 1")
        first = operator.call("GET", "/actions?q=rolloutGroup.name==group-1")["content"]
        assert len(first) == 2

        holder = once_holder(server.directory / "data", "rollouts")
        (other,) = [held[0] for pid, held in connections_to_each(server).items()
                    if pid != holder]
        other_pid = serving_pid(other, child_pids(server.process.pid))
        for action in first:
            controller_id = action["_links"]["self"]["href"].split("/targets/")[1].split("/")[0]
            status, _ = call(other, "POST", "/DEFAULT/controller/v1/%s/deploymentBase/%d/feedback"
                             % (controller_id, action["id"]),
                             {"status": {"execution": "closed",
                                         "result": {"finished": "success"}}},
                             headers={"Authorization": "GatewayToken gw"})
            assert status == 200
            assert serving_pid(other, child_pids(server.process.pid)) == other_pid != holder
        reported = time.monotonic()
        wait_until(lambda: groups() == ["finished", "running"], interval + 2,
                   "group 2 started by the worker holding the lock", on_timeout=server.log)
        assert time.monotonic() - reported < interval + 2
        assert once_holder(server.directory / "data", "rollouts") == holder
    finally:
        server.stop()
