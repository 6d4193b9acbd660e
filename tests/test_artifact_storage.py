"""Artifact storage as the server uses it ([artifacts] settings, README "Artifact storage"):
uploads through the Management API streaming into S3 (Moto's server, tests/s3stand.py),
downloads with ranges through ddi-lite, blobs shared and freed with their rows, devices sent
to a presigned URL with `redirect = true`, a clear refusal when the bucket cannot be used, a
backup of a bucket's blobs, and a real server killed with SIGKILL whose restart tidies the
bucket while its memory stays flat during a large upload.
"""

import hashlib
import http.client
import os
import signal
import sys
import urllib.parse
import urllib.request

import pytest

import database
import ddi_lite
import live
import s3stand
import storage
from artifacts.store import temp_name, this_node
from conftest import DEVICE, Server, token
from service import artifact_store
from service.configuration import ConfigError
from storage import backup as backups
from storage.models import ActionStatus

MiB = 1024 * 1024
ADMIN = {"Authorization": "Basic YWRtaW46YWRtaW4="}
# Two S3 parts and a bit: the upload is a multipart one.
CONTENT = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(9 * MiB // 32))
CONTENT += b"tail"


def settings(tmp_path, **extra):
    return ddi_lite.load_config(path=None, environ={}, overrides=dict({
        "server.data_dir": str(tmp_path / "data"), "server.trusted_proxies": ""}, **extra))


@pytest.fixture
def bucket(moto):
    return moto.new_bucket()


@pytest.fixture
def s3_server(tmp_path, moto, bucket):
    server = Server(settings(tmp_path, **moto.settings("s3://%s/fleet" % bucket)))
    server.configure(**{"authentication.targettoken.enabled": True})
    yield server
    storage.close_store()


def upload(server, module_id, content, filename="fw.bin", status=201):
    return server.http.post("/rest/v1/softwaremodules/%d/artifacts" % module_id,
                            params={"sha256sum": hashlib.sha256(content).hexdigest()},
                            upload_files=[("file", filename, content)], headers=ADMIN,
                            status=status)


def objects(moto, bucket):
    found, uploads = s3stand.keys(moto, bucket)
    assert uploads == []
    return found


def deployed(server, content=CONTENT):
    """dev-1 with an action for a module whose artifact was uploaded: the download path."""
    server.target("dev-1", "token-1")
    module = server.module(name="fw")
    upload(server, module.id, content)
    server.assign(server.distribution_set([module]), "dev-1")
    return "%s/dev-1/softwaremodules/%d/artifacts/fw.bin" % (DEVICE, module.id)


def test_an_upload_streams_into_the_bucket_and_downloads_with_ranges(s3_server, moto, bucket):
    path = deployed(s3_server)
    sha1 = hashlib.sha1(CONTENT).hexdigest()
    assert objects(moto, bucket) == ["fleet/%s/%s" % (sha1[:2], sha1)]
    whole = s3_server.http.get(path, headers=token(), status=200)
    assert whole.body == CONTENT and whole.headers["ETag"] == '"%s"' % sha1
    part = s3_server.http.get(path, headers=dict(token(), Range="bytes=8388600-8388615"),
                              status=206)
    assert part.body == CONTENT[8388600:8388616]
    resumed = s3_server.http.get(path, status=206, headers=dict(
        token(), Range="bytes=%d-" % (len(CONTENT) - 4), **{"If-Range": '"%s"' % sha1}))
    assert resumed.body == b"tail"
    several = s3_server.http.get(path, headers=dict(token(), Range="bytes=0-3,-4"), status=206)
    assert CONTENT[:4] in several.body and b"tail" in several.body
    listing = s3_server.http.get("/rest/v1/softwaremodules/1/artifacts", headers=ADMIN).json
    download = s3_server.http.get("/rest/v1/softwaremodules/1/artifacts/%d/download"
                                  % listing[0]["id"], headers=dict(ADMIN, Range="bytes=0-9"),
                                  status=206)
    assert download.body == CONTENT[:10]


def test_a_blob_shared_by_two_modules_leaves_the_bucket_with_the_last(s3_server, moto, bucket):
    first, second = s3_server.module(name="a"), s3_server.module(name="b")
    upload(s3_server, first.id, b"same image")
    upload(s3_server, second.id, b"same image")
    assert len(objects(moto, bucket)) == 1
    s3_server.http.delete("/rest/v1/softwaremodules/%d" % first.id, headers=ADMIN)
    assert len(objects(moto, bucket)) == 1
    s3_server.http.delete("/rest/v1/softwaremodules/%d" % second.id, headers=ADMIN)
    assert objects(moto, bucket) == []


def test_a_refused_upload_leaves_nothing_in_the_bucket(s3_server, moto, bucket):
    module = s3_server.module(name="fw")
    s3_server.http.post("/rest/v1/softwaremodules/%d/artifacts" % module.id,
                        params={"sha1sum": "0" * 40}, upload_files=[("file", "x", CONTENT)],
                        headers=ADMIN, status=400)
    assert objects(moto, bucket) == []


@pytest.fixture
def redirecting(tmp_path, moto, bucket):
    server = Server(settings(tmp_path, **dict(moto.settings("s3://%s" % bucket), **{
        "artifacts.redirect": "true", "artifacts.redirect_seconds": "120"})))
    server.configure(**{"authentication.targettoken.enabled": True})
    yield server
    storage.close_store()


def test_redirect_sends_a_device_to_a_presigned_url_and_notes_the_download(redirecting, moto):
    path = deployed(redirecting, b"from the bucket itself")
    answer = redirecting.http.get(path, headers=token(), status=302)
    location = answer.headers["Location"]
    assert location.startswith(moto.endpoint + "/") and "X-Amz-Expires=120" in location
    assert answer.body == b""
    # Without the device's token: the URL is its own credential (a client that kept the
    # Authorization header would be refused by S3: two kinds of credentials).
    with urllib.request.urlopen(location, timeout=10) as direct:
        assert direct.read() == b"from the bucket itself"
    ranged = redirecting.http.get(path, headers=dict(token(), Range="bytes=0-3"), status=302)
    assert ranged.headers["Location"].startswith(moto.endpoint + "/")
    history = [entry.status for entry in ActionStatus.select()]
    assert history.count("DOWNLOAD") == 1  # the whole-file GET; ranges are never noted


def test_what_a_presigned_url_cannot_answer_is_served_by_ddi_lite(redirecting):
    path = deployed(redirecting, b"validators are ddi-lite's")
    sha1 = hashlib.sha1(b"validators are ddi-lite's").hexdigest()
    head = redirecting.http.head(path, headers=token(), status=200)
    assert head.headers["Content-Length"] == "25"
    resumed = redirecting.http.get(path, status=206, headers=dict(
        token(), Range="bytes=20-", **{"If-Range": '"%s"' % sha1}))
    assert resumed.body == b"ddi-lite's"[-5:]
    matched = redirecting.http.get(path, headers=dict(token(), **{"If-Match": sha1}))
    assert matched.status_int == 200 and matched.body == b"validators are ddi-lite's"
    md5sum = redirecting.http.get(path + ".MD5SUM", headers=token(), status=200)
    assert md5sum.body.startswith(hashlib.md5(b"validators are ddi-lite's").hexdigest().encode())
    redirecting.http.get(path, headers=token("wrong"), status=401)


def test_redirect_with_the_local_store_serves_the_bytes(tmp_path):
    server = Server(settings(tmp_path, **{"artifacts.redirect": "true"}))
    try:
        server.configure(**{"authentication.targettoken.enabled": True})
        path = deployed(server, b"no bucket, no redirect")
        assert server.http.get(path, headers=token(), status=200).body == \
            b"no bucket, no redirect"
    finally:
        storage.close_store()


def test_a_bucket_that_cannot_be_used_stops_the_start_with_a_clear_error(tmp_path, moto):
    config = settings(tmp_path, **moto.settings("s3://no-such-bucket/x"))
    with pytest.raises(ConfigError, match="no-such-bucket"):
        ddi_lite.create_app(config)
    storage.close_store()
    with pytest.raises(ConfigError, match="s3://bucket"):
        artifact_store.blob_store(settings(tmp_path, **{"artifacts.store": "s3://"}))


def test_without_boto3_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore.config", None)
    with pytest.raises(ConfigError, match=r"ddi-lite\[s3\]"):
        artifact_store.blob_store(settings(tmp_path, **{"artifacts.store": "s3://b/p"}))


def test_a_shared_directory_store_is_used_and_marked_shared(tmp_path):
    store = artifact_store.blob_store(settings(tmp_path, **{
        "artifacts.store": str(tmp_path / "nfs")}))
    assert store.shared and store.root == str(tmp_path / "nfs")
    assert not artifact_store.blob_store(settings(tmp_path)).shared


@database.sqlite_only("backup copies the SQLite file (PostgreSQL: pg_dump)")
def test_a_backup_takes_the_buckets_blobs_and_a_restore_puts_them_into_another(
        s3_server, moto, tmp_path):
    deployed(s3_server, b"kept in the bucket")
    data_dir = s3_server.config["server", "data_dir"]
    storage.close_store()
    live_store = artifact_store.blob_store(s3_server.config)

    def stores(directory):
        return live_store if directory == data_dir else \
            artifact_store.blob_store(settings(tmp_path), directory)
    manifest = backups.backup(data_dir, str(tmp_path / "backup"), stores)
    assert manifest["artifacts"] == {"blobs": 1, "bytes": 18}
    target_bucket = moto.new_bucket()
    restored = moto.store("s3://%s/again" % target_bucket)
    os.makedirs(str(tmp_path / "restored"))
    backups.restore(str(tmp_path / "backup"), str(tmp_path / "restored"),
                    lambda directory: restored if directory.endswith("restored") else
                    artifact_store.blob_store(settings(tmp_path), directory))
    sha1 = hashlib.sha1(b"kept in the bucket").hexdigest()
    assert objects(moto, target_bucket) == ["again/%s/%s" % (sha1[:2], sha1)]


# --- a real server -------------------------------------------------------------------------

class GeneratedBody:
    """A multipart body made as it is sent: the test never holds the file either."""

    boundary = "s3-upload-boundary"

    def __init__(self, size):
        self.head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="big.bin"'
                     '\r\n\r\n' % self.boundary).encode()
        self.tail = ("\r\n--%s--\r\n" % self.boundary).encode()
        self.size = size
        self.length = len(self.head) + size + len(self.tail)
        self.sha1 = hashlib.sha1()

    def __iter__(self):
        yield self.head
        block = os.urandom(MiB)
        for _ in range(self.size // MiB):
            self.sha1.update(block)
            yield block
        yield self.tail


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc for the RSS")
def test_a_real_server_on_s3_keeps_its_memory_flat_and_survives_kill_9(tmp_path, moto):
    bucket = moto.new_bucket()
    lines = ["[artifacts]"] + ["%s = %s" % (name.split(".")[1], value) for name, value in
                               moto.settings("s3://%s/ddi" % bucket).items()]
    server = live.DdiLite(tmp_path / "node", lines, threads=2)
    try:
        module = live.api(server.url, "POST", "/softwaremodules",
                          [{"name": "big", "version": "1", "type": "os"}])[0]
        body = GeneratedBody(64 * MiB)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        baseline = live.rss_bytes(server.process.pid)
        with live.RssSampler(server.process.pid) as sampler:
            connection.request("POST", "/rest/v1/softwaremodules/%d/artifacts" % module["id"],
                               iter(body), {"Authorization": live.ADMIN, "Content-Length":
                                            str(body.length), "Content-Type":
                                            "multipart/form-data; boundary=" + body.boundary})
            answer = connection.getresponse()
            assert answer.status == 201, answer.read()
            answer.read()
        # About two 8 MiB parts and what boto3 keeps (18 MiB measured; 128 MiB parts: 124).
        assert sampler.peak - baseline < 32 * MiB, \
            "the server grew by %d MiB" % ((sampler.peak - baseline) // MiB)
        sha1 = body.sha1.hexdigest()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        # What a process killed mid-upload leaves: a temp object and an unfinished upload.
        client = moto.client()
        dead = temp_name(this_node(), pid=server.process.pid)
        client.put_object(Bucket=bucket, Key="ddi/tmp/" + dead, Body=b"half")
        client.create_multipart_upload(Bucket=bucket, Key="ddi/tmp/" + dead + "x")
    finally:
        server.stop()
    again = live.DdiLite(tmp_path / "node", lines, threads=2)
    try:
        assert objects(moto, bucket) == ["ddi/%s/%s" % (sha1[:2], sha1)]
        listing = live.api(again.url, "GET", "/softwaremodules/%d/artifacts" % module["id"])
        request = urllib.request.Request(
            again.url + "/rest/v1/softwaremodules/%d/artifacts/%d/download"
            % (module["id"], listing[0]["id"]), headers={"Authorization": live.ADMIN,
                                                         "Range": "bytes=0-%d" % (MiB - 1)})
        with urllib.request.urlopen(request, timeout=30) as download:
            assert download.status == 206 and len(download.read()) == MiB
    finally:
        again.stop()
