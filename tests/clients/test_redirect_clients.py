"""Real device clients sent to a presigned URL (`[artifacts] redirect = true` with an S3
store, README "Artifact storage"): SWUpdate (libcurl) and rauc-hawkbit (aiohttp) follow
ddi-lite's 302 to the bucket, leave their TargetToken behind (S3 refuses a request with two
kinds of credentials), and install what they fetched. The bucket is on Moto's server
(tests/s3stand.py) behind a recording proxy, so that the test sees what reached it; ddi-lite's
own S3 calls go through the same proxy, as its endpoint.
"""

import os

import pytest

from live import DdiLite
from .conftest import serving
from .proxy import RecordingProxy
from .test_swupdate_client import TOKEN as SWUPDATE_TOKEN
from .test_swupdate_client import first_boot

TOKEN = "redirect-token"


@pytest.fixture
def bucket_proxy(moto):
    proxy = RecordingProxy(moto.port)
    yield proxy
    proxy.close()


@pytest.fixture
def server(tmp_path, moto, bucket_proxy):
    """conftest's server, with its artifacts in a bucket and devices redirected to it."""
    settings = dict(moto.settings("s3://%s/fleet" % moto.new_bucket()),
                    **{"artifacts.endpoint": bucket_proxy.url, "artifacts.redirect": "true"})
    lines = ["[artifacts]"] + ["%s = %s" % (name.partition(".")[2], value)
                               for name, value in settings.items()]
    with serving(DdiLite(tmp_path / "server", lines)) as running:
        yield running


def presigned_gets(bucket_proxy):
    return [exchange for exchange in bucket_proxy.requests("GET")
            if "X-Amz-Signature=" in exchange.path]


def test_swupdate_follows_the_redirect_to_the_bucket_without_its_token(
        server, proxy, start_swupdate, signing_key, tmp_path, bucket_proxy):
    recorder = first_boot(server, proxy, start_swupdate, signing_key, tmp_path, "swu-s3")[2]
    downloads = recorder.requests(contains="/artifacts/firmware-2.0.swu")
    # HEAD (the size, for progress) is ddi-lite's; the GET goes to the bucket.
    assert [(e.method, e.status) for e in downloads] == [("HEAD", 200), ("GET", 302)]
    assert downloads[1].headers["authorization"] == "TargetToken " + SWUPDATE_TOKEN
    fetched = presigned_gets(bucket_proxy)
    assert [e.status for e in fetched] == [200]
    assert "authorization" not in fetched[0].headers


def test_rauc_hawkbit_follows_the_redirect_to_the_bucket_without_its_token(
        server, rauc_device, bucket_proxy, rauc_hawkbit_installed):
    operator = server.operator
    operator.add_target("rauc-s3", token=TOKEN)
    bundle = os.urandom(300 * 1024)
    action_id = operator.assign(operator.distribution("rauc-s3", {"rauc-s3.raucb": bundle}),
                                "rauc-s3")
    device = rauc_device("rauc-s3", TOKEN)
    received_id, deployment = device.deployment(device.poll())
    assert device.download(deployment) is True
    device.install(received_id)
    assert (device.install_dir / "installed.raucb").read_bytes() == bundle
    fetched = presigned_gets(bucket_proxy)
    assert [e.status for e in fetched] == [200]
    assert "authorization" not in fetched[0].headers
    assert operator.action("rauc-s3", action_id)["status"] == "finished"
    assert "download" in [entry["type"] for entry in operator.statuses("rauc-s3", action_id)]
