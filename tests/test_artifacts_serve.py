import builtins

import pytest

from artifacts import serve
from artifacts.serve import file_response, md5sum_response

SIZE = 5120
CONTENT = bytes(range(256)) * (SIZE // 256)
SHA1 = "0123456789abcdef0123456789abcdef01234567"
LAST_MODIFIED_MS = 1717071602123  # 2024-05-30 12:20:02.123 UTC
LAST_MODIFIED = "Thu, 30 May 2024 12:20:02 GMT"
BOUNDARY = "THIS_STRING_SEPARATES_MULTIPART"

COMMON_HEADERS = {
    "Accept-Ranges": "bytes",
    "ETag": '"0123456789abcdef0123456789abcdef01234567"',
    "Last-Modified": LAST_MODIFIED,
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "attachment;filename=firmware.bin",
}


class FileSpy:
    """Wraps a real file object and records how it is used."""

    def __init__(self, real):
        self._real = real
        self.read_sizes = []
        self.bytes_read = 0
        self.seeks = []
        self.closed = False

    def read(self, n):
        data = self._real.read(n)
        self.read_sizes.append(n)
        self.bytes_read += len(data)
        return data

    def seek(self, position, whence=0):
        self.seeks.append(position)
        return self._real.seek(position, whence)

    def close(self):
        self.closed = True
        self._real.close()


@pytest.fixture
def opened_files(monkeypatch):
    spies = []

    def spying_open(*args, **kwargs):
        spy = FileSpy(builtins.open(*args, **kwargs))
        spies.append(spy)
        return spy

    monkeypatch.setattr(serve, "open", spying_open, raising=False)
    return spies


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(CONTENT)
    return str(path)


def get(path, headers=None, method="GET", size=SIZE, filename="firmware.bin"):
    return file_response(path, size, SHA1, LAST_MODIFIED_MS, filename, method, headers or {})


def header_map(response):
    names = [name for name, _ in response.headers]
    assert len(names) == len(set(names)), f"duplicate headers: {names}"
    assert all(isinstance(value, str) for _, value in response.headers)
    return dict(response.headers)


def body_bytes(response):
    return b"".join(response.body)


def test_full_get_is_200_with_all_headers_and_whole_file(artifact):
    response = get(artifact)
    assert response.status == 200
    assert header_map(response) == dict(
        COMMON_HEADERS, **{"Content-Type": "application/octet-stream", "Content-Length": "5120"}
    )
    assert body_bytes(response) == CONTENT


def test_last_modified_is_rfc1123_gmt_truncated_to_seconds(artifact):
    response = file_response(artifact, SIZE, SHA1, 1, "f", "GET", {})
    assert header_map(response)["Last-Modified"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert header_map(get(artifact))["Last-Modified"] == LAST_MODIFIED


def test_single_range_is_206_with_content_range_and_slice(artifact):
    response = get(artifact, {"range": "bytes=10-19"})
    assert response.status == 206
    headers = header_map(response)
    assert headers["Content-Range"] == "bytes 10-19/5120"
    assert headers["Content-Length"] == "10"
    assert headers["Content-Type"] == "application/octet-stream"
    for name, value in COMMON_HEADERS.items():
        assert headers[name] == value
    assert body_bytes(response) == CONTENT[10:20]


def test_range_end_past_eof_is_clamped_to_last_byte(artifact):
    response = get(artifact, {"range": "bytes=5000-999999"})
    assert response.status == 206
    assert header_map(response)["Content-Range"] == "bytes 5000-5119/5120"
    assert body_bytes(response) == CONTENT[5000:]


def test_absurdly_long_range_end_is_clamped_not_a_crash(artifact):
    response = get(artifact, {"range": "bytes=5110-" + "9" * 5000})
    assert response.status == 206
    assert body_bytes(response) == CONTENT[5110:]


def test_open_range_runs_to_end_of_file(artifact):
    response = get(artifact, {"range": "bytes=5100-"})
    assert response.status == 206
    assert header_map(response)["Content-Range"] == "bytes 5100-5119/5120"
    assert header_map(response)["Content-Length"] == "20"
    assert body_bytes(response) == CONTENT[5100:]


def test_suffix_range_returns_last_bytes(artifact):
    response = get(artifact, {"range": "bytes=-7"})
    assert response.status == 206
    assert header_map(response)["Content-Range"] == "bytes 5113-5119/5120"
    assert body_bytes(response) == CONTENT[-7:]


def test_suffix_range_larger_than_file_returns_whole_file(artifact):
    response = get(artifact, {"range": "bytes=-999999"})
    assert response.status == 206
    assert header_map(response)["Content-Range"] == "bytes 0-5119/5120"
    assert body_bytes(response) == CONTENT


def test_multiple_ranges_are_sorted_multipart_with_exact_length(artifact):
    response = get(artifact, {"range": "bytes=100-104,0-9,-3"})
    assert response.status == 206
    headers = header_map(response)
    assert headers["Content-Type"] == "multipart/byteranges; boundary=" + BOUNDARY
    assert "Content-Range" not in headers
    expected = (
        b"--THIS_STRING_SEPARATES_MULTIPART\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 0-9/5120\r\n\r\n" + CONTENT[0:10] + b"\r\n"
        b"--THIS_STRING_SEPARATES_MULTIPART\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 100-104/5120\r\n\r\n" + CONTENT[100:105] + b"\r\n"
        b"--THIS_STRING_SEPARATES_MULTIPART\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Range: bytes 5117-5119/5120\r\n\r\n" + CONTENT[5117:] + b"\r\n"
        b"--THIS_STRING_SEPARATES_MULTIPART--"
    )
    body = body_bytes(response)
    assert body == expected
    assert headers["Content-Length"] == str(len(body))


def test_adjacent_ranges_are_not_overlapping(artifact):
    response = get(artifact, {"range": "bytes=10-19,0-9"})
    assert response.status == 206
    assert body_bytes(response).count(b"Content-Range:") == 2


def test_body_exposes_path_and_ranges_for_file_wrapper(artifact):
    single = get(artifact, {"range": "bytes=10-19"})
    assert (single.body.path, single.body.ranges) == (artifact, ((10, 19),))
    multi = get(artifact, {"range": "bytes=30-39,0-9"})
    assert (multi.body.path, multi.body.ranges) == (artifact, ((0, 9), (30, 39)))
    assert get(artifact).body.ranges == ((0, SIZE - 1),)


def assert_unsatisfiable(response):
    assert response.status == 416
    headers = header_map(response)
    assert headers["Content-Range"] == "bytes */5120"
    assert headers["Content-Length"] == "0"
    for name, value in COMMON_HEADERS.items():
        assert headers[name] == value
    assert body_bytes(response) == b""


@pytest.mark.parametrize("value", ["bytes=0-10,10-20", "bytes=50-60,0-100", "bytes=0-9,0-9"])
def test_overlapping_ranges_are_416(artifact, value):
    assert_unsatisfiable(get(artifact, {"range": value}))


@pytest.mark.parametrize(
    "value",
    [
        "bytes=0-9, 20-29",
        "bytes= 0-9",
        "bytes=0-9 ",
        "bytes =0-9",
        "bytes=0-9,",
        "bytes=",
        "bytes=abc",
        "bytes=1-2-3",
        "items=0-9",
        "BYTES=0-9",
        "bytes=\u0660-\u0669",  # Arabic-Indic digits match \d but are not HTTP digits
        "",
    ],
)
def test_malformed_range_header_is_416(artifact, value):
    assert_unsatisfiable(get(artifact, {"range": value}))


@pytest.mark.parametrize("value", ["bytes=-", "bytes=-0", "bytes=0-9,-"])
def test_empty_or_zero_suffix_range_is_416(artifact, value):
    assert_unsatisfiable(get(artifact, {"range": value}))


@pytest.mark.parametrize("value", ["bytes=5120-", "bytes=5120-6000", "bytes=99999-"])
def test_range_past_end_is_416_with_star_content_range(artifact, value):
    assert_unsatisfiable(get(artifact, {"range": value}))


def test_range_with_start_after_end_is_416(artifact):
    assert_unsatisfiable(get(artifact, {"range": "bytes=20-10"}))


def test_any_range_of_an_empty_file_is_416(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    response = get(str(path), {"range": "bytes=-5"}, size=0)
    assert response.status == 416
    assert header_map(response)["Content-Range"] == "bytes */0"


@pytest.mark.parametrize("if_range", ['"' + SHA1 + '"', SHA1])
def test_if_range_matching_etag_honours_range(artifact, if_range):
    response = get(artifact, {"range": "bytes=0-9", "if-range": if_range})
    assert response.status == 206
    assert body_bytes(response) == CONTENT[:10]


@pytest.mark.parametrize(
    "if_range", ['"' + "f" * 40 + '"', "W/\"" + SHA1 + '"', '"' + SHA1.upper() + '"', "garbage"]
)
def test_if_range_not_matching_ignores_range_and_sends_whole_file(artifact, if_range):
    response = get(artifact, {"range": "bytes=0-9", "if-range": if_range})
    assert response.status == 200
    assert "Content-Range" not in header_map(response)
    assert body_bytes(response) == CONTENT


@pytest.mark.parametrize(
    "if_range",
    [
        LAST_MODIFIED,  # same second; the stored milliseconds must not matter
        "Thu, 30 May 2024 12:20:03 GMT",
        "Fri, 31 May 2024 00:00:00 GMT",
        "Thu, 30 May 2024 14:20:02 +0200",
    ],
)
def test_if_range_date_not_before_last_modified_honours_range(artifact, if_range):
    response = get(artifact, {"range": "bytes=0-9", "if-range": if_range})
    assert response.status == 206
    assert body_bytes(response) == CONTENT[:10]


@pytest.mark.parametrize(
    "if_range", ["Thu, 30 May 2024 12:20:01 GMT", "Thu, 30 May 2024 13:20:02 +0200"]
)
def test_if_range_date_before_last_modified_sends_whole_file(artifact, if_range):
    response = get(artifact, {"range": "bytes=0-9", "if-range": if_range})
    assert response.status == 200
    assert body_bytes(response) == CONTENT


def test_if_range_mismatch_also_ignores_an_invalid_range(artifact):
    response = get(artifact, {"range": "bytes=9999-", "if-range": '"other"'})
    assert response.status == 200


@pytest.mark.parametrize(
    "if_match",
    [
        '"' + SHA1 + '"',
        SHA1,
        "*",
        'W/"' + SHA1 + '"',
        '"other", "' + SHA1 + '"',
        ' "other" ,  ' + SHA1 + "  ",
    ],
)
def test_if_match_with_our_etag_serves_the_file(artifact, if_match):
    response = get(artifact, {"if-match": if_match})
    assert response.status == 200
    assert body_bytes(response) == CONTENT


@pytest.mark.parametrize("if_match", ['"other"', '"' + SHA1 + 'x"', "", SHA1.upper()])
def test_if_match_mismatch_is_412_with_empty_body_and_no_file_opened(if_match, opened_files):
    response = get("/nonexistent/blob", {"if-match": if_match, "range": "bytes=0-9"})
    assert response.status == 412
    assert header_map(response)["Content-Length"] == "0"
    assert body_bytes(response) == b""
    assert opened_files == []


def test_head_has_full_get_headers_and_empty_body_ignoring_range(artifact, opened_files):
    full_get_headers = get(artifact).headers
    response = get(artifact, {"range": "bytes=0-9"}, method="HEAD")
    assert response.status == 200
    assert response.headers == full_get_headers
    assert body_bytes(response) == b""
    assert opened_files == []


def test_head_honours_if_match(artifact):
    assert get(artifact, {"if-match": '"other"'}, method="HEAD").status == 412


def test_file_is_opened_only_when_body_is_iterated(opened_files):
    response = get("/nonexistent/blob", {"range": "bytes=0-9"})
    assert response.status == 206
    assert opened_files == []
    with pytest.raises(FileNotFoundError):
        body_bytes(response)


def test_file_is_closed_once_body_is_exhausted(artifact, opened_files):
    body_bytes(get(artifact))
    assert [spy.closed for spy in opened_files] == [True]


def test_closing_a_partly_read_body_closes_the_file(tmp_path, opened_files):
    path = tmp_path / "big"
    path.write_bytes(b"z" * (1024 * 1024))
    body = get(str(path), size=1024 * 1024).body
    chunks = iter(body)
    next(chunks)
    assert opened_files[0].closed is False
    body.close()
    assert opened_files[0].closed is True


def test_file_is_read_and_sent_in_chunks_of_at_most_256_kib(tmp_path, opened_files):
    data = bytes(range(251)) * 4200  # a little over 1 MiB, not chunk-aligned
    path = tmp_path / "big"
    path.write_bytes(data)
    chunks = list(get(str(path), size=len(data)).body)
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 256 * 1024
    assert max(opened_files[0].read_sizes) <= 256 * 1024


def test_range_at_large_offset_seeks_instead_of_reading_through(tmp_path, opened_files):
    size = 5 * 1024**3  # sparse; past the 32-bit boundary
    path = tmp_path / "sparse"
    with open(path, "wb") as sparse:
        sparse.truncate(size - 16)
        sparse.seek(size - 16)
        sparse.write(b"0123456789ABCDEF")
    response = get(str(path), {"range": "bytes=-16"}, size=size)
    assert header_map(response)["Content-Range"] == f"bytes {size - 16}-{size - 1}/{size}"
    assert body_bytes(response) == b"0123456789ABCDEF"
    assert opened_files[0].seeks == [size - 16]
    assert opened_files[0].bytes_read == 16


def test_file_shorter_than_promised_raises_instead_of_sending_short_body(artifact):
    with pytest.raises(OSError):
        body_bytes(get(artifact, size=SIZE + 100))


@pytest.mark.parametrize(
    "filename, disposition",
    [
        ("firmware-1.2_rc.bin", "attachment;filename=firmware-1.2_rc.bin"),
        ("my firmware.bin", 'attachment;filename="my firmware.bin"'),
        ("a;b.bin", 'attachment;filename="a;b.bin"'),
        ('say "hi"\\.bin', 'attachment;filename="say \\"hi\\"\\\\.bin"'),
        (
            "prüf ung.bin",
            "attachment;filename=\"pr_f ung.bin\";filename*=UTF-8''pr%C3%BCf%20ung.bin",
        ),
        ("固件.bin", "attachment;filename=__.bin;filename*=UTF-8''%E5%9B%BA%E4%BB%B6.bin"),
        ("evil\r\nX: y", "attachment;filename=\"evil__X: y\";filename*=UTF-8''evil%0D%0AX%3A%20y"),
    ],
)
def test_content_disposition_quotes_and_encodes_filename(artifact, filename, disposition):
    assert header_map(get(artifact, filename=filename))["Content-Disposition"] == disposition


def test_md5sum_response_is_md5sum_line_as_attachment():
    response = md5sum_response("d41d8cd98f00b204e9800998ecf8427e", "firmware.bin")
    assert response.status == 200
    body = body_bytes(response)
    assert body == b"d41d8cd98f00b204e9800998ecf8427e  firmware.bin"
    assert header_map(response) == {
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Length": str(len(body)),
        "Content-Disposition": "attachment;filename=firmware.bin.MD5SUM",
    }


def test_md5sum_disposition_quotes_filename_like_the_artifact():
    response = md5sum_response("d41d8cd98f00b204e9800998ecf8427e", "my file.bin")
    assert header_map(response)["Content-Disposition"] == 'attachment;filename="my file.bin.MD5SUM"'
