"""Everything that is bytes: storing artifact files and serving them over HTTP.

``upload`` reads a multipart upload as it arrives; ``store`` keeps uploaded files
content-addressed on disk behind the ``BlobStorage`` interface, which ``s3`` also serves from
an S3-compatible bucket (imported only when such a store is configured, with boto3); ``serve``
turns one stored file into a framework-free HTTP download response. This package knows nothing about the web framework, the database or the
``storage`` package; those layers pass in streams, paths, sizes, checksums and headers.
"""

from .serve import (FileBody, Response, file_response, md5sum_response,
                    redirect_response)
from .store import (Blob, BlobError, BlobStorage, BlobStore, BlobTooLarge, ChecksumMismatch,
                    EmptyBlob, Received)
from .upload import MalformedUpload, MultipartUpload

__all__ = [
    "Blob",
    "BlobError",
    "BlobStorage",
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
    "redirect_response",
]
