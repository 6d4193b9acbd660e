"""A real S3 API server on loopback for the S3 blob store's tests: Moto's standalone server
(`moto[server]`, in the test extras), started as its own process on a free port, once per test
session. Each test gets a bucket of its own. Without Moto or boto3 the tests that need it skip,
naming the package; with CI=true they fail instead, so CI cannot pass by skipping.
"""

import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

import live

# Moto accepts any credentials; these only have to be given, so that boto3 looks nowhere else.
ACCESS_KEY = "ddi-lite-test"
SECRET_KEY = "ddi-lite-test-secret"
REGION = "us-east-1"


def _needed(module):
    try:
        __import__(module)
    except ImportError:
        message = "needs %s: pip install 'moto[server]' boto3 (the test extras)" % module
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class MotoServer:
    """One `python -m moto.server` process; `stop()` ends it."""

    def __init__(self, directory):
        self._client = None
        self.port = live.free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(directory, "moto.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=live.clean_environment())
        live.wait_until(self._answers, 30, "Moto's server to answer", interval=0.1,
                        on_timeout=self.log)

    def _answers(self):
        if self.process.poll() is not None:
            raise AssertionError("Moto's server exited:\n" + self.log())
        try:
            with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2):
                return True
        except OSError:
            return False

    def log(self):
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")[-4000:]

    def client(self):
        if self._client is None:
            import boto3
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint, region_name=REGION,
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        return self._client

    def new_bucket(self):
        name = "ddi-lite-%s" % uuid.uuid4().hex[:16]
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, url):
        """The [artifacts] settings of a store at `url` on this server."""
        return {"artifacts.store": url, "artifacts.endpoint": self.endpoint,
                "artifacts.region": REGION, "artifacts.access_key": ACCESS_KEY,
                "artifacts.secret_key": SECRET_KEY}

    def store(self, url):
        from artifacts.s3 import S3BlobStore
        return S3BlobStore(url, self.endpoint, REGION, ACCESS_KEY, SECRET_KEY)

    def stop(self):
        live.stop_process(self.process)
        self._log.close()


def keys(server, bucket):
    """Every object key in the bucket and every unfinished multipart upload's key."""
    client = server.client()
    objects = [entry["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket) for entry in page.get("Contents", ())]
    uploads = [upload["Key"] for upload in
               client.list_multipart_uploads(Bucket=bucket).get("Uploads", ())]
    return sorted(objects), sorted(uploads)
