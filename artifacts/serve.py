"""HTTP download responses for stored artifact files, independent of any web framework.

Decides status, headers and body for a GET or HEAD of one file the way
hawkBit's DDI download resources do: ETag and Last-Modified validators,
If-Match, If-Range and single or multipart byte ranges. The web layer only
copies the result onto its own response object. ``download_response`` holds those decisions
apart from where the bytes come from, for the gateway's cache, which serves an artifact
while it is still arriving from upstream.

Every response carries an exact Content-Length, because some device clients
cannot cope with chunked transfer encoding. File bytes are streamed from
disk in bounded chunks; the file is opened only when the body is iterated.
The bytes come from a path, or from any source with ``open_range(first,
last)`` that returns a stream of exactly those bytes (a blob in object
storage, ``artifacts.s3``).

Not handled here: looking up which file to serve, authorisation, and
recording download progress.
"""

import email.utils
import re
import urllib.parse
from datetime import timezone
from typing import (Callable, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                    Tuple, Union)

READ_CHUNK_SIZE = 256 * 1024
OCTET_STREAM = "application/octet-stream"
MULTIPART_BOUNDARY = "THIS_STRING_SEPARATES_MULTIPART"

_RANGE_HEADER = re.compile(r"bytes=[0-9]*-[0-9]*(?:,[0-9]*-[0-9]*)*")
# Characters that force a quoted-string in Content-Disposition (RFC 2616 separators).
_TOKEN_SEPARATORS = frozenset('()<>@,;:\\"/[]?={} ')
# Beyond RFC 5987's unreserved characters, which urllib.parse.quote always keeps.
_ATTR_CHAR_EXTRAS = "!#$&+^`|"
# Longer digit strings would overflow Python's int-from-str limit; any such
# position lies beyond every real file, so one oversized stand-in will do.
_MAX_POSITION_DIGITS = 20

ByteRange = Tuple[int, int]  # first and last byte position, both inclusive
Piece = Union[bytes, ByteRange]  # literal bytes, or a range of the file


class Response(NamedTuple):
    status: int
    headers: List[Tuple[str, str]]
    body: Iterable[bytes]


class _BoundedReads:
    """A file whose reads return at most READ_CHUNK_SIZE bytes.

    Waitress's file wrapper asks for as much as the socket's send buffer holds (about 4 MB on
    loopback) and its allocator keeps such blocks: with 50 concurrent downloads that alone was
    30 MiB of RSS. Bounded reads keep a download's memory at one chunk.
    """

    def __init__(self, handle):
        self._handle = handle

    def read(self, size=-1):
        if size is None or size < 0 or size > READ_CHUNK_SIZE:
            size = READ_CHUNK_SIZE
        return self._handle.read(size)

    def seek(self, *args):
        return self._handle.seek(*args)

    def tell(self):
        return self._handle.tell()

    def seekable(self):
        return True

    def close(self):
        self._handle.close()


class FileBody:
    """Streams literal bytes and inclusive byte ranges of one file, in order.

    ``path`` and ``ranges`` are public so that a WSGI layer may hand a plain
    single-range body to ``wsgi.file_wrapper`` instead of iterating it.
    ``path`` is None when the bytes come from a source with ``open_range``.
    """

    def __init__(self, source, pieces: Sequence[Piece]):
        self.source = source
        self.path = source if isinstance(source, str) else None
        self._pieces = tuple(pieces)
        self.ranges = tuple(piece for piece in self._pieces if isinstance(piece, tuple))
        self.length = pieces_length(self._pieces)
        self._file = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for piece in self._pieces:
                if isinstance(piece, bytes):
                    yield piece
                else:
                    yield from self._read_range(*piece)
        finally:
            self.close()

    def open_tail(self, size: int):
        """The file, opened at the start of the only range, when that range runs to the end
        of the file; else None. A server's file wrapper may send such a body straight from
        the file to EOF (Waitress does, without copying it through Python buffers)."""
        if len(self._pieces) != 1 or not self.ranges or self.ranges[0][1] != size - 1 \
                or self.path is None:
            return None
        handle = open(self.path, "rb")
        handle.seek(self.ranges[0][0])
        return _BoundedReads(handle)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read_range(self, first: int, last: int) -> Iterator[bytes]:
        if self.path is None:
            self.close()
            self._file = self.source.open_range(first, last)
        else:
            if self._file is None:
                self._file = open(self.path, "rb", buffering=0)
            self._file.seek(first)
        remaining = last - first + 1
        while remaining:
            chunk = self._file.read(min(READ_CHUNK_SIZE, remaining))
            if not chunk:
                # Content-Length is already promised; failing loudly lets the
                # server drop the connection instead of sending a short body.
                raise OSError(f"{self.path or self.source} ended before byte {last}")
            remaining -= len(chunk)
            yield chunk


def file_response(
    path,
    size: int,
    etag_sha1: str,
    last_modified_ms: int,
    filename: str,
    method: str,
    headers: Mapping[str, str],
) -> Response:
    """Respond to a GET or HEAD of the file at ``path`` (or a source with ``open_range``).

    ``headers`` holds the request headers under lowercase names.
    """
    return download_response(size, etag_sha1, last_modified_ms, filename, method, headers,
                             lambda pieces: FileBody(path, pieces))


def download_response(
    size: int,
    etag_sha1: str,
    last_modified_ms: int,
    filename: str,
    method: str,
    headers: Mapping[str, str],
    body_for: Callable[[Sequence[Piece]], Iterable[bytes]],
) -> Response:
    """Respond to a GET or HEAD of an artifact of ``size`` bytes wherever its bytes come from.

    ``body_for(pieces)`` makes the body out of literal bytes and inclusive byte ranges of
    the artifact, in order, and must yield exactly as many bytes as they add up to (the
    Content-Length): a local file for ``file_response``, the gateway's cache while it fills.
    """
    etag = f'"{etag_sha1}"'
    last_modified = email.utils.formatdate(last_modified_ms // 1000, usegmt=True)

    if_match = headers.get("if-match")
    if if_match is not None and not _if_match_satisfied(if_match, etag_sha1):
        return Response(
            412,
            [("ETag", etag), ("Last-Modified", last_modified), ("Content-Length", "0")],
            (),
        )

    common = [
        ("Accept-Ranges", "bytes"),
        ("ETag", etag),
        ("Last-Modified", last_modified),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Disposition", content_disposition(filename)),
    ]
    if method == "HEAD":
        return Response(200, common + _length_headers(OCTET_STREAM, size), ())

    range_header = headers.get("range")
    if range_header is None or not _if_range_allows(
        headers.get("if-range"), etag_sha1, last_modified_ms
    ):
        return Response(200, common + _length_headers(OCTET_STREAM, size),
                        body_for([(0, size - 1)] if size else []))

    ranges = _satisfiable_ranges(range_header, size)
    if ranges is None:
        return Response(
            416,
            common + [("Content-Range", f"bytes */{size}")] + _length_headers(OCTET_STREAM, 0),
            (),
        )

    if len(ranges) == 1:
        first, last = ranges[0]
        return Response(
            206,
            common
            + [("Content-Range", f"bytes {first}-{last}/{size}")]
            + _length_headers(OCTET_STREAM, last - first + 1),
            body_for(ranges),
        )

    pieces: List[Piece] = []
    for first, last in ranges:
        part_head = (
            f"--{MULTIPART_BOUNDARY}\r\n"
            f"Content-Type: {OCTET_STREAM}\r\n"
            f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
        )
        pieces += [part_head.encode("ascii"), (first, last), b"\r\n"]
    pieces.append(f"--{MULTIPART_BOUNDARY}--".encode("ascii"))
    content_type = f"multipart/byteranges; boundary={MULTIPART_BOUNDARY}"
    return Response(206, common + _length_headers(content_type, pieces_length(pieces)),
                    body_for(pieces))


def pieces_length(pieces: Sequence[Piece]) -> int:
    """How many bytes a body of these literal bytes and inclusive ranges holds."""
    return sum(len(piece) if isinstance(piece, bytes) else piece[1] - piece[0] + 1
               for piece in pieces)


def redirect_response(url: Optional[str]) -> Optional[Response]:
    """A 302 to where the file can be fetched directly (a presigned URL), None without one."""
    if url is None:
        return None
    return Response(302, [("Location", url), ("Content-Length", "0")], ())


def md5sum_response(md5: str, filename: str) -> Response:
    """The ``.MD5SUM`` companion of an artifact, in md5sum(1) output format."""
    # The filename may be any Unicode: UTF-8, and said so. hawkBit's contract asks for
    # text/plain and leaves the charset open; for an ASCII name the bytes are the same.
    body = f"{md5}  {filename}".encode("utf-8")
    return Response(
        200,
        [("Content-Disposition", content_disposition(filename + ".MD5SUM"))]
        + _length_headers("text/plain; charset=UTF-8", len(body)),
        (body,),
    )


def content_disposition(filename: str) -> str:
    """``attachment`` with the filename as a token, quoted-string or RFC 6266 pair."""
    if all(_is_printable_ascii(char) for char in filename):
        return f"attachment;filename={_token_or_quoted(filename)}"
    # Old clients only read the plain parameter, so give them a stand-in.
    fallback = "".join(char if _is_printable_ascii(char) else "_" for char in filename)
    encoded = urllib.parse.quote(filename, safe=_ATTR_CHAR_EXTRAS, encoding="utf-8")
    return f"attachment;filename={_token_or_quoted(fallback)};filename*=UTF-8''{encoded}"


def _is_printable_ascii(char: str) -> bool:
    return " " <= char <= "~"


def _token_or_quoted(value: str) -> str:
    if value and not any(char in _TOKEN_SEPARATORS for char in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _length_headers(content_type: str, length: int) -> List[Tuple[str, str]]:
    return [("Content-Type", content_type), ("Content-Length", str(length))]


def _if_match_satisfied(header: str, etag_sha1: str) -> bool:
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate in ("*", etag_sha1, f'"{etag_sha1}"'):
            return True
    return False


def _if_range_allows(header: Optional[str], etag_sha1: str, last_modified_ms: int) -> bool:
    if header is None:
        return True
    if header in (f'"{etag_sha1}"', etag_sha1):
        return True
    try:
        since = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        # HTTP dates are always GMT; "-0000" parses as naive.
        since = since.replace(tzinfo=timezone.utc)
    return int(since.timestamp()) >= last_modified_ms // 1000


def _satisfiable_ranges(header: str, size: int) -> Optional[List[ByteRange]]:
    """Resolve a Range header to sorted, disjoint ranges, or None for a 416."""
    if not _RANGE_HEADER.fullmatch(header):
        return None
    ranges = []
    for spec in header[len("bytes="):].split(","):
        first_text, last_text = spec.split("-")
        if first_text:
            first = _position(first_text)
            last = size - 1 if not last_text else min(_position(last_text), size - 1)
        else:
            suffix_length = _position(last_text) if last_text else 0
            if suffix_length == 0:
                return None
            first, last = max(size - suffix_length, 0), size - 1
        if first > last:
            return None
        ranges.append((first, last))
    ranges.sort()
    for (_, previous_last), (next_first, _) in zip(ranges, ranges[1:]):
        if next_first <= previous_last:
            return None
    return ranges


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    if len(digits) > _MAX_POSITION_DIGITS:
        return 10 ** _MAX_POSITION_DIGITS
    return int(digits)
