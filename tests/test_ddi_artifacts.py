"""DDI artifact resources through the WSGI app (contract §4.14-§4.16, §9 items 24-29).

Artifact list, download (ranges, validators, HEAD, MD5SUM), who may download what, and which
requests leave a DOWNLOAD entry in the action history. Every test runs with the blobs in the
data directory and in S3 (a bucket on Moto's server, tests/s3stand.py), served through ddi-lite.
"""

import email.utils
import hashlib
import time

import pytest

import ddi_lite
from conftest import DEVICE, token
from storage import assignments
from storage.models import ActionStatus, Artifact

CONTROLLER = "dev-1"
# 5120 bytes without any period, so a wrong offset can never produce the expected bytes.
CONTENT = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(160))
SIZE = len(CONTENT)
SPACED = b"spaced artifact bytes"
BOUNDARY = "THIS_STRING_SEPARATES_MULTIPART"
NOT_ASSIGNED = ("org.eclipse.hawkbit.repository.exception."
                "SoftwareModuleNotAssignedToTargetException")
NOT_FOUND = "org.eclipse.hawkbit.repository.exception.EntityNotFoundException"
ENTITY_NOT_FOUND = "hawkbit.server.error.repo.entityNotFound"


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def config(tmp_path, backend_settings):
    """conftest's settings, with the artifacts in each backend in turn."""
    return ddi_lite.load_config(path=None, environ={}, overrides=dict({
        "server.data_dir": str(tmp_path / "data"), "server.trusted_proxies": ""},
        **backend_settings))


class Deployed:
    """Target dev-1 with one running action whose single module holds two artifacts."""

    def __init__(self, server):
        self.server = server
        server.target(CONTROLLER, "token-1")
        self.module = server.module(name="fw", files={"fw.bin": CONTENT, "my fw.bin": SPACED})
        self.distribution_set = server.distribution_set([self.module])
        self.action = server.assign(self.distribution_set, CONTROLLER)
        self.artifact = Artifact.get((Artifact.module == self.module.id)
                                     & (Artifact.filename == "fw.bin"))

    def path(self, filename="fw.bin", module_id=None):
        return "%s/%s/softwaremodules/%d/artifacts/%s" % (
            DEVICE, CONTROLLER, self.module.id if module_id is None else module_id, filename)

    def list_path(self, module_id=None):
        return "%s/%s/softwaremodules/%d/artifacts" % (
            DEVICE, CONTROLLER, self.module.id if module_id is None else module_id)

    def get(self, filename="fw.bin", status=200, module_id=None, **headers):
        return self.server.http.get(self.path(filename, module_id),
                                    headers=dict(token(), **headers), status=status)

    def entries(self, action=None):
        action = self.action if action is None else action
        return [(entry.status, entry.messages) for entry in
                ActionStatus.select().where(ActionStatus.action == action.id)
                .order_by(ActionStatus.id)]

    def feedback(self, execution, finished):
        url = "%s/%s/deploymentBase/%d/feedback" % (DEVICE, CONTROLLER, self.action.id)
        self.server.http.post_json(url, {"status": {"execution": execution,
                                                    "result": {"finished": finished}}},
                                   headers=token(), status=200)


@pytest.fixture
def deployed(server):
    return Deployed(server)


def foreign_module(server):
    """A module assigned to another target (dev-2) only."""
    server.target("dev-2", "token-2")
    module = server.module(name="other", files={"other.bin": b"other bytes"})
    server.assign(server.distribution_set([module], name="other-set"), "dev-2")
    return module


def last_modified(artifact):
    return email.utils.formatdate(artifact.created_at // 1000, usegmt=True)


def lowered(headers):
    """Header names are case-insensitive (Bottle sends `Etag`)."""
    return {name.lower(): value for name, value in dict(headers).items()}


def full_headers(artifact):
    return lowered({
        "Content-Type": "application/octet-stream",
        "Content-Length": str(SIZE),
        "Accept-Ranges": "bytes",
        "ETag": '"%s"' % artifact.sha1,
        "Last-Modified": last_modified(artifact),
        "Content-Disposition": "attachment;filename=fw.bin",
        "X-Content-Type-Options": "nosniff",
    })


def artifact_document(module_id, row):
    href = "http://localhost%s/%s/softwaremodules/%d/artifacts/%s" % (
        DEVICE, CONTROLLER, module_id, row.filename.replace(" ", "%20"))
    return {
        "filename": row.filename,
        "hashes": {"sha1": row.sha1, "md5": row.md5, "sha256": row.sha256},
        "size": row.size,
        "_links": {"download": {"href": href}, "download-http": {"href": href},
                   "md5sum": {"href": href + ".MD5SUM"},
                   "md5sum-http": {"href": href + ".MD5SUM"}},
    }


def not_assigned_body(module_id):
    return {"exceptionClass": NOT_ASSIGNED, "errorCode": ENTITY_NOT_FOUND,
            "message": "No assignment found for SoftwareModule with id {%d} to Target with id "
                       "{%s}." % (module_id, CONTROLLER)}


# --- artifact list (§4.14) -------------------------------------------------------------------

def test_artifact_list_is_a_bare_array_of_artifact_documents(server, deployed):
    response = server.http.get(deployed.list_path(), headers=token(), status=200)

    rows = Artifact.select().where(Artifact.module == deployed.module.id).order_by(Artifact.id)
    assert response.json == [artifact_document(deployed.module.id, row) for row in rows]
    assert [document["filename"] for document in response.json] == ["fw.bin", "my fw.bin"]
    assert response.json[0]["size"] == SIZE
    assert response.json[0]["hashes"]["sha256"] == hashlib.sha256(CONTENT).hexdigest()


def test_artifact_list_defaults_to_hal_json(server, deployed):
    response = server.http.get(deployed.list_path(), headers=token(), status=200)
    assert response.headers["Content-Type"] == "application/hal+json"


def test_artifact_list_answers_application_json_when_asked(server, deployed):
    response = server.http.get(deployed.list_path(),
                               headers=dict(token(), Accept="application/json;charset=UTF-8"),
                               status=200)
    assert response.headers["Content-Type"] == "application/json"


def test_artifact_list_has_no_etag(server, deployed):
    # Contract §1.4/§4.14: the shallow-ETag filter skips the softwaremodules/{id}/artifacts tree.
    response = server.http.get(deployed.list_path(), headers=token(), status=200)
    assert "ETag" not in response.headers


def test_artifact_list_allowed_for_installed_set_after_success(server, deployed):
    deployed.feedback("closed", "success")

    response = server.http.get(deployed.list_path(), headers=token(), status=200)
    assert [document["filename"] for document in response.json] == ["fw.bin", "my fw.bin"]


def test_artifact_list_allowed_for_installed_set_while_a_newer_action_runs(server, deployed):
    deployed.feedback("closed", "success")
    newer = server.module(name="fw-next", files={"next.bin": b"next"})
    server.assign(server.distribution_set([newer], name="next-set"), CONTROLLER)

    installed = server.http.get(deployed.list_path(), headers=token(), status=200)
    current = server.http.get(deployed.list_path(newer.id), headers=token(), status=200)
    assert [document["filename"] for document in installed.json] == ["fw.bin", "my fw.bin"]
    assert [document["filename"] for document in current.json] == ["next.bin"]


def test_artifact_list_of_failed_action_is_404_not_assigned(server, deployed):
    deployed.feedback("closed", "failure")

    response = server.http.get(deployed.list_path(), headers=token(), status=404)
    assert response.json == not_assigned_body(deployed.module.id)


def test_artifact_list_of_other_targets_module_is_404_not_assigned(server, deployed):
    module = foreign_module(server)

    response = server.http.get(deployed.list_path(module.id), headers=token(), status=404)
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == not_assigned_body(module.id)


def test_artifact_list_of_cancelling_action_is_404_not_assigned(server, deployed):
    assignments.cancel(deployed.action, now_ms(), "admin")

    response = server.http.get(deployed.list_path(), headers=token(), status=404)
    assert response.json == not_assigned_body(deployed.module.id)


def test_artifact_list_of_unknown_module_is_404_entity_not_found(server, deployed):
    response = server.http.get(deployed.list_path(987654), headers=token(), status=404)
    assert response.json == {
        "exceptionClass": NOT_FOUND, "errorCode": ENTITY_NOT_FOUND,
        "message": "SoftwareModule with given identifier {987654} does not exist.",
        "info": {"type": "SoftwareModule", "entityId": 987654}}


def test_artifact_list_with_wrong_token_is_401(server, deployed):
    response = server.http.get(deployed.list_path(), headers=token("wrong"), status=401)
    assert response.body == b""


# --- download: full file (§4.15.2) -----------------------------------------------------------

def test_download_returns_whole_file_with_hawkbit_headers(deployed):
    response = deployed.get()

    assert response.body == CONTENT
    assert lowered(response.headers) == full_headers(deployed.artifact)


def test_download_etag_is_quoted_sha1(deployed):
    response = deployed.get()
    assert response.headers["ETag"] == '"%s"' % hashlib.sha1(CONTENT).hexdigest()


def test_download_accepts_octet_stream_accept_header(deployed):
    response = deployed.get(Accept="application/octet-stream")
    assert response.body == CONTENT


def test_download_ignores_json_accept_header(deployed):
    response = deployed.get(Accept="application/json;charset=UTF-8")
    assert response.body == CONTENT


def test_download_ignores_if_none_match(deployed):
    response = deployed.get(**{"If-None-Match": '"%s"' % deployed.artifact.sha1})
    assert response.body == CONTENT


def test_download_of_unknown_module_is_404_entity_not_found(deployed):
    response = deployed.get(status=404, module_id=987654)
    assert response.json == {
        "exceptionClass": NOT_FOUND, "errorCode": ENTITY_NOT_FOUND,
        "message": "SoftwareModule with given identifier {987654} does not exist.",
        "info": {"type": "SoftwareModule", "entityId": 987654}}


def test_download_with_non_numeric_module_id_is_400(server, deployed):
    server.http.get("%s/%s/softwaremodules/abc/artifacts/fw.bin" % (DEVICE, CONTROLLER),
                    headers=token(), status=400)


# --- download: ranges (§4.15.3) --------------------------------------------------------------

def test_single_range_is_206_with_content_range(deployed):
    response = deployed.get(status=206, Range="bytes=10-19")

    assert response.body == CONTENT[10:20]
    assert response.headers["Content-Range"] == "bytes 10-19/%d" % SIZE
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["ETag"] == '"%s"' % deployed.artifact.sha1


def test_range_end_beyond_file_is_clipped(deployed):
    response = deployed.get(status=206, Range="bytes=5000-999999")

    assert response.body == CONTENT[5000:]
    assert response.headers["Content-Range"] == "bytes 5000-%d/%d" % (SIZE - 1, SIZE)


def test_open_range_resumes_from_offset(deployed):
    response = deployed.get(status=206, Range="bytes=1000-")

    assert response.body == CONTENT[1000:]
    assert response.headers["Content-Range"] == "bytes 1000-%d/%d" % (SIZE - 1, SIZE)
    assert response.headers["Content-Length"] == str(SIZE - 1000)


def test_resume_at_last_byte_returns_one_byte(deployed):
    response = deployed.get(status=206, Range="bytes=%d-" % (SIZE - 1))

    assert response.body == CONTENT[-1:]
    assert response.headers["Content-Range"] == "bytes %d-%d/%d" % (SIZE - 1, SIZE - 1, SIZE)


def test_suffix_range_returns_file_tail(deployed):
    response = deployed.get(status=206, Range="bytes=-100")

    assert response.body == CONTENT[-100:]
    assert response.headers["Content-Range"] == "bytes %d-%d/%d" % (SIZE - 100, SIZE - 1, SIZE)


def test_suffix_longer_than_file_is_clamped_to_whole_file(deployed):
    response = deployed.get(status=206, Range="bytes=-%d" % (SIZE * 3))

    assert response.body == CONTENT
    assert response.headers["Content-Range"] == "bytes 0-%d/%d" % (SIZE - 1, SIZE)


def test_resume_at_end_of_file_is_416_with_size_and_empty_body(deployed):
    # rauc-hawkbit-updater resumes with its local size and takes 416 as "already complete".
    response = deployed.get(status=416, Range="bytes=%d-" % SIZE)

    assert response.body == b""
    assert response.headers["Content-Range"] == "bytes */%d" % SIZE
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"] == '"%s"' % deployed.artifact.sha1


UNSATISFIABLE_RANGES = (
    "bytes=%d-" % (SIZE + 1),      # start past the end
    "bytes=%d-%d" % (SIZE, SIZE + 10),
    "bytes=0-9, 20-29",            # whitespace is not allowed anywhere
    "bytes= 0-9",
    "bytes=0-9,5-19",              # overlapping
    "bytes=20-10",                 # start after end
    "bytes=-0",                    # empty suffix
    "bytes=-",
    "items=0-9",                   # another unit
)


def test_unsatisfiable_ranges_are_416_with_size_and_empty_body(deployed):
    for header in UNSATISFIABLE_RANGES:
        response = deployed.get(status=416, Range=header)

        assert (response.body, response.headers["Content-Range"]) == (
            b"", "bytes */%d" % SIZE), header


def test_multiple_ranges_are_multipart_byteranges(deployed):
    response = deployed.get(status=206, Range="bytes=20-29,0-9")

    expected = b"".join([
        ("--%s\r\nContent-Type: application/octet-stream\r\n"
         "Content-Range: bytes 0-9/%d\r\n\r\n" % (BOUNDARY, SIZE)).encode(),
        CONTENT[0:10],
        ("\r\n--%s\r\nContent-Type: application/octet-stream\r\n"
         "Content-Range: bytes 20-29/%d\r\n\r\n" % (BOUNDARY, SIZE)).encode(),
        CONTENT[20:30],
        ("\r\n--%s--" % BOUNDARY).encode(),
    ])
    assert response.body == expected
    assert response.headers["Content-Type"] == "multipart/byteranges; boundary=" + BOUNDARY
    assert response.headers["Content-Length"] == str(len(expected))
    assert "Content-Range" not in response.headers


# --- download: validators --------------------------------------------------------------------

def test_if_match_mismatch_is_412_with_empty_body(deployed):
    response = deployed.get(status=412, **{"If-Match": '"%s"' % ("0" * 40)})
    assert response.body == b""


def test_if_match_with_artifact_sha1_in_any_form_downloads(deployed):
    sha1 = deployed.artifact.sha1
    # hawkBit compares the bare SHA-1; the standard form is quoted: both are accepted.
    for value in (sha1, '"%s"' % sha1, "*", '"%s", %s' % ("0" * 40, sha1)):
        response = deployed.get(**{"If-Match": value})
        assert response.body == CONTENT, value


def test_if_range_with_current_etag_honours_range(deployed):
    response = deployed.get(status=206, Range="bytes=0-9",
                            **{"If-Range": '"%s"' % deployed.artifact.sha1})
    assert response.body == CONTENT[:10]


def test_if_range_with_other_etag_sends_whole_file(deployed):
    response = deployed.get(status=200, Range="bytes=0-9", **{"If-Range": '"%s"' % ("0" * 40)})
    assert response.body == CONTENT
    assert "Content-Range" not in response.headers


def test_if_range_with_last_modified_date_honours_range(deployed):
    response = deployed.get(status=206, Range="bytes=0-9",
                            **{"If-Range": last_modified(deployed.artifact)})
    assert response.body == CONTENT[:10]


def test_if_range_with_older_date_sends_whole_file(deployed):
    older = email.utils.formatdate(deployed.artifact.created_at // 1000 - 86400, usegmt=True)
    response = deployed.get(status=200, Range="bytes=0-9", **{"If-Range": older})
    assert response.body == CONTENT


# --- HEAD ------------------------------------------------------------------------------------

def test_head_has_get_headers_and_no_body(server, deployed):
    response = server.http.head(deployed.path(), headers=token(), status=200)

    assert response.body == b""
    assert lowered(response.headers) == full_headers(deployed.artifact)


def test_head_ignores_range(server, deployed):
    response = server.http.head(deployed.path(), headers=dict(token(), Range="bytes=0-9"),
                                status=200)
    assert response.headers["Content-Length"] == str(SIZE)
    assert "Content-Range" not in response.headers


# --- MD5SUM (§4.16) --------------------------------------------------------------------------

def test_md5sum_is_md5sum_line_without_newline(deployed):
    response = deployed.get("fw.bin.MD5SUM")

    body = ("%s  fw.bin" % hashlib.md5(CONTENT).hexdigest()).encode("ascii")
    assert response.body == body
    assert response.headers["Content-Type"].split(";")[0] == "text/plain"
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["Content-Disposition"] == "attachment;filename=fw.bin.MD5SUM"


def test_md5sum_of_a_non_ascii_filename_is_labelled_utf_8(server):
    server.target(CONTROLLER, "token-1")
    module = server.module(name="fw", files={"\u56fa\u4ef6-\u00fc.bin": SPACED})
    server.assign(server.distribution_set([module]), CONTROLLER)
    response = server.http.get("%s/%s/softwaremodules/%d/artifacts/%s.MD5SUM" % (
        DEVICE, CONTROLLER, module.id, "%E5%9B%BA%E4%BB%B6-%C3%BC.bin"), headers=token())

    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert response.body.decode("utf-8") == "%s  \u56fa\u4ef6-\u00fc.bin" % hashlib.md5(
        SPACED).hexdigest()


def test_md5sum_with_json_accept_is_406(deployed):
    deployed.get("fw.bin.MD5SUM", status=406, Accept="application/json")


def test_md5sum_of_unknown_artifact_is_empty_404(deployed):
    response = deployed.get("nothing.bin.MD5SUM", status=404)
    assert response.body == b""


# --- authorisation ---------------------------------------------------------------------------

def test_download_of_other_targets_module_is_404_not_assigned(server, deployed):
    module = foreign_module(server)

    response = deployed.get("other.bin", status=404, module_id=module.id)
    assert response.json == not_assigned_body(module.id)


def test_md5sum_of_other_targets_module_is_404_not_assigned(server, deployed):
    module = foreign_module(server)

    response = deployed.get("other.bin.MD5SUM", status=404, module_id=module.id)
    assert response.json == not_assigned_body(module.id)


def test_download_of_cancelling_action_is_404_not_assigned(deployed):
    assignments.cancel(deployed.action, now_ms(), "admin")

    response = deployed.get(status=404)
    assert response.json == not_assigned_body(deployed.module.id)


def test_range_download_of_cancelling_action_is_404(deployed):
    assignments.cancel(deployed.action, now_ms(), "admin")
    deployed.get(status=404, Range="bytes=0-9")


def test_download_after_successful_installation_is_404_not_assigned(deployed):
    deployed.feedback("closed", "success")

    response = deployed.get(status=404)
    assert response.json == not_assigned_body(deployed.module.id)


def test_md5sum_after_successful_installation_is_404(deployed):
    deployed.feedback("closed", "success")
    deployed.get("fw.bin.MD5SUM", status=404)


def test_unknown_filename_is_empty_404(deployed):
    response = deployed.get("missing.bin", status=404)
    assert response.body == b""


def test_filename_case_must_match_exactly(deployed):
    deployed.get("FW.BIN", status=404)


TRAVERSAL_NAMES = (
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "fw.bin%00",
    "%00",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cetc%5Cpasswd",
)


def test_path_traversal_names_are_404(server, deployed):
    for name in TRAVERSAL_NAMES:
        response = server.http.get(deployed.path(name), headers=token(), expect_errors=True)

        assert response.status_int == 404, name
        assert b"root:" not in response.body, name


def test_filename_with_space_downloads_percent_encoded(deployed):
    response = deployed.get("my%20fw.bin")
    assert response.body == SPACED


def test_filename_with_space_downloads_plus_encoded(deployed):
    response = deployed.get("my+fw.bin")
    assert response.body == SPACED


def test_download_with_wrong_token_is_401_without_body(server, deployed):
    response = server.http.get(deployed.path(), headers=token("token-2"), status=401)

    assert response.body == b""
    assert "WWW-Authenticate" not in response.headers


def test_download_without_credentials_is_401(server, deployed):
    server.http.get(deployed.path(), status=401)


def test_download_with_other_targets_token_is_401(server, deployed):
    foreign_module(server)  # dev-2 with token-2 exists
    server.http.get(deployed.path(), headers=token("token-2"), status=401)


# --- Content-Length everywhere ---------------------------------------------------------------

def test_every_response_has_exact_content_length(server, deployed):
    cases = (
        ("GET", "fw.bin", {}, 200),
        ("HEAD", "fw.bin", {}, 200),
        ("GET", "fw.bin", {"Range": "bytes=1-2"}, 206),
        ("GET", "fw.bin", {"Range": "bytes=1-2,4-5"}, 206),
        ("GET", "fw.bin", {"Range": "bytes=999999-"}, 416),
        ("GET", "fw.bin", {"If-Match": "nope"}, 412),
        ("GET", "missing.bin", {}, 404),
        ("GET", "fw.bin.MD5SUM", {}, 200),
    )
    for method, filename, headers, status in cases:
        response = server.http.request(deployed.path(filename), method=method,
                                       headers=dict(token(), **headers), status=status)

        expected = SIZE if method == "HEAD" else len(response.body)
        assert response.headers.get("Content-Length") == str(expected), (method, headers)
        assert "Transfer-Encoding" not in response.headers, (method, headers)


# --- download logging ------------------------------------------------------------------------

def test_full_download_logs_one_download_entry(deployed):
    before = deployed.entries()
    deployed.get()

    assert deployed.entries() == before + [
        ("DOWNLOAD", ["Update Server: Target downloads %s" % deployed.path()])]


def test_repeated_identical_download_adds_no_entry(deployed):
    deployed.get()
    after_first = deployed.entries()
    deployed.get()
    deployed.get()

    assert deployed.entries() == after_first


def test_range_requests_add_no_entry(deployed):
    before = deployed.entries()
    for start in range(0, SIZE, 128):
        deployed.get(status=206, Range="bytes=%d-%d" % (start, start + 127))
    deployed.get(status=206, Range="bytes=0-")
    deployed.get(status=206, Range="bytes=-10")
    deployed.get(status=206, Range="bytes=0-1,3-4")
    deployed.get(status=416, Range="bytes=%d-" % SIZE)

    assert deployed.entries() == before


def test_range_request_answered_in_full_adds_no_entry(deployed):
    before = deployed.entries()
    deployed.get(status=200, Range="bytes=0-9", **{"If-Range": '"%s"' % ("0" * 40)})
    assert deployed.entries() == before


def test_head_adds_no_entry(server, deployed):
    before = deployed.entries()
    server.http.head(deployed.path(), headers=token(), status=200)
    server.http.head(deployed.path("fw.bin.MD5SUM"), headers=token(), status=200)
    assert deployed.entries() == before


def test_md5sum_logs_one_download_entry(deployed):
    before = deployed.entries()
    deployed.get("fw.bin.MD5SUM")

    assert deployed.entries() == before + [
        ("DOWNLOAD", ["Update Server: Target downloads %s" % deployed.path("fw.bin.MD5SUM")])]


def test_refused_download_adds_no_entry(deployed):
    before = deployed.entries()
    deployed.get(status=412, **{"If-Match": "nope"})
    deployed.get("missing.bin", status=404)
    assert deployed.entries() == before


def test_artifact_url_rejects_other_methods_with_405(server, deployed):
    before = deployed.entries()
    for method in ("POST", "PUT", "DELETE"):
        response = server.http.request(deployed.path(), method=method, headers=token(),
                                       status=405)

        allowed = {part.strip() for part in response.headers["Allow"].split(",")}
        assert "GET" in allowed and method not in allowed, method
    assert deployed.entries() == before


# --- artifact names ending in .MD5SUM --------------------------------------------------------
#
# An uploaded artifact is always served under its own name: `x.MD5SUM` uploaded next to `x` is
# what the `.MD5SUM` link of `x` then serves (the operator's own checksum file, typically
# md5sum(1) output with its newline), and the `.MD5SUM` link of `x.MD5SUM` is the checksum file
# made up for `x.MD5SUM`. Only a name no artifact has is read as `<artifact>.MD5SUM`.

ADMIN = {"Authorization": "Basic YWRtaW46YWRtaW4="}
UPLOADED_MD5SUM = ("%s  fw.bin\n" % hashlib.md5(CONTENT).hexdigest()).encode("ascii")
UPLOAD_ORDERS = (("fw.bin", "fw.bin.MD5SUM"), ("fw.bin.MD5SUM", "fw.bin"))


def uploaded(server, filenames):
    """dev-1 with a running action on a module whose artifacts were uploaded through the
    Management API in this order: the DDI artifact documents by filename."""
    server.target(CONTROLLER, "token-1")
    module = server.module(name="fw")
    contents = {"fw.bin": CONTENT, "fw.bin.MD5SUM": UPLOADED_MD5SUM}
    for filename in filenames:
        server.http.post("/rest/v1/softwaremodules/%d/artifacts" % module.id, params={},
                         upload_files=[("file", filename, contents[filename])], headers=ADMIN,
                         status=201)
    server.assign(server.distribution_set([module]), CONTROLLER)
    listing = server.http.get("%s/%s/softwaremodules/%d/artifacts" % (DEVICE, CONTROLLER,
                                                                       module.id),
                              headers=token()).json
    return {document["filename"]: document for document in listing}


def follow(server, document, rel, status=200):
    href = document["_links"][rel]["href"]
    return server.http.get(href[len("http://localhost"):], headers=token(), status=status)


@pytest.mark.parametrize("order", UPLOAD_ORDERS, ids=" then ".join)
def test_artifact_named_like_a_checksum_file_is_served_by_its_download_links(server, order):
    documents = uploaded(server, order)

    for rel in ("download-http", "download"):
        response = follow(server, documents["fw.bin.MD5SUM"], rel)
        assert response.body == UPLOADED_MD5SUM, rel
        assert response.headers["Content-Type"] == "application/octet-stream", rel
        assert response.headers["Content-Disposition"] == "attachment;filename=fw.bin.MD5SUM"


@pytest.mark.parametrize("order", UPLOAD_ORDERS, ids=" then ".join)
def test_checksum_link_of_an_artifact_named_like_a_checksum_file_checks_that_artifact(server,
                                                                                    order):
    documents = uploaded(server, order)

    response = follow(server, documents["fw.bin.MD5SUM"], "md5sum-http")
    assert response.body == ("%s  fw.bin.MD5SUM" % hashlib.md5(UPLOADED_MD5SUM).hexdigest()
                             ).encode("ascii")
    assert response.headers["Content-Disposition"] == \
        "attachment;filename=fw.bin.MD5SUM.MD5SUM"


@pytest.mark.parametrize("order", UPLOAD_ORDERS, ids=" then ".join)
def test_uploaded_checksum_file_is_what_the_checksum_link_of_its_artifact_serves(server, order):
    documents = uploaded(server, order)

    for rel in ("md5sum-http", "md5sum"):
        assert follow(server, documents["fw.bin"], rel).body == UPLOADED_MD5SUM, rel
    assert follow(server, documents["fw.bin"], "download-http").body == CONTENT


def test_artifact_named_like_a_checksum_file_downloads_without_its_namesake(server):
    documents = uploaded(server, ("fw.bin.MD5SUM",))

    assert follow(server, documents["fw.bin.MD5SUM"], "download-http").body == UPLOADED_MD5SUM
