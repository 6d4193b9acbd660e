"""Artifact uploads as they arrive: one multipart/form-data request read piece by piece, so
that the file part streams into the blob store without being held in memory.

Framework-free: the caller hands in the WSGI input stream, the Content-Type and the
Content-Length, and maps `MalformedUpload` to its own error answer.
"""

import multipart

from .store import BlobError


class MalformedUpload(BlobError):
    """A broken or incomplete multipart request; nothing was stored."""


class MultipartUpload:
    """One multipart/form-data request, read as it arrives.

    Small form fields are collected; the part named `file` is handed out as a stream
    (`read(n)`), so an artifact goes to the blob store without being held in memory.
    """

    chunk_size = 256 * 1024
    max_field_bytes = 64 * 1024

    def __init__(self, wsgi_input, content_type, content_length):
        media, options = multipart.parse_options_header(content_type)
        if media != "multipart/form-data" or not options.get("boundary"):
            raise MalformedUpload("The request is not multipart/form-data.")
        self._input = wsgi_input
        self._remaining = content_length
        self._parser = multipart.PushMultipartParser(
            options["boundary"], content_length, max_header_count=16)
        self._events = self._parse()
        self._pending = b""
        self._in_file = False
        self.fields = {}
        self.filename = None

    def _parse(self):
        try:
            while True:
                chunk = self._input.read(min(self.chunk_size, self._remaining)) \
                    if self._remaining > 0 else b""
                self._remaining -= len(chunk)
                for event in self._parser.parse(chunk):
                    yield event
                if not chunk:
                    return
        except multipart.MultipartError as error:
            raise MalformedUpload("Broken multipart request: %s" % error)

    def open_file(self):
        """Skip to the `file` part, keeping the fields before it."""
        if not self._collect_fields(until_file=True):
            raise MalformedUpload("The request has no part named 'file'.")
        self._in_file = True
        return self

    def read(self, size=-1):
        while self._in_file and (size < 0 or len(self._pending) < size):
            event = next(self._events, None)
            # multipart 1.x (the last for Python 3.9) yields bytearray chunks, 2.x bytes.
            if isinstance(event, (bytes, bytearray)):
                self._pending += event
            else:
                self._in_file = False
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def finish(self):
        """Read what follows the file part (more fields may come after it)."""
        self._in_file = False
        self._collect_fields(until_file=False)

    def _collect_fields(self, until_file):
        """Keep small form fields; True when stopped at the start of the `file` part."""
        field = None
        for event in self._events:
            if isinstance(event, multipart.MultipartSegment):
                if until_file and event.name == "file":
                    self.filename = event.filename or ""
                    return True
                field = (event.name, bytearray())
            elif event is None:
                if field is not None:
                    self.fields[field[0]] = field[1].decode("utf-8", "replace").strip()
                field = None
            elif field is not None:
                field[1].extend(event)
                if len(field[1]) > self.max_field_bytes:
                    raise MalformedUpload("The form field '%s' is too large." % field[0])
        return False
