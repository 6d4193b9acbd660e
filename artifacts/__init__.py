"""Everything that is bytes: storing artifact files and serving them over HTTP.

``upload`` reads a multipart upload as it arrives; ``store`` keeps uploaded files
content-addressed on disk; ``serve`` turns one stored file into a framework-free HTTP
download response. This package knows nothing about the web framework, the database or the
``storage`` package; those layers pass in streams, paths, sizes, checksums and headers.
"""

from .serve import FileBody, Response, file_response, md5sum_response
from .store import (Blob, BlobError, BlobStore, BlobTooLarge, ChecksumMismatch, EmptyBlob,
                    Received)
from .upload import MalformedUpload, MultipartUpload

__all__ = [
    "Blob",
    "BlobError",
    "BlobStore",
    "BlobTooLarge",
    "ChecksumMismatch",
    "EmptyBlob",
    "FileBody",
    "MalformedUpload",
    "MultipartUpload",
    "Received",
    "Response",
    "file_response",
    "md5sum_response",
]
