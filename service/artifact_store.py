"""Where artifact bytes are kept: the `[artifacts]` settings and the blob store they choose.

The data directory's `artifacts/` folder by default; another directory (one that several
nodes share over NFS); or an S3-compatible bucket (`artifacts.s3`, with boto3 from the `s3`
extra). Also whether devices download through the server or by redirect to the bucket.
"""

import os

from artifacts import BlobStore
from service.configuration import ConfigError, Setting

S3_SCHEME = "s3://"

SETTINGS = (
    Setting("artifacts", "store", "str", "",
            "Where artifact files are kept. Empty: artifacts/ in the data directory. A path: "
            "that directory, which several ddi-lite nodes may share (NFS). "
            "s3://bucket/prefix: S3-compatible object storage (pip install ddi-lite[s3])."),
    Setting("artifacts", "endpoint", "str", "",
            "S3 endpoint URL, e.g. http://minio:9000; empty: AWS S3 of the region."),
    Setting("artifacts", "region", "str", "",
            "S3 region; empty: boto3's default (AWS_DEFAULT_REGION, ~/.aws/config)."),
    Setting("artifacts", "access_key", "str", "",
            "S3 access key id; empty: boto3's own sources (environment, ~/.aws, instance "
            "role). Keep it out of this file: DDI_LITE_ARTIFACTS_ACCESS_KEY."),
    Setting("artifacts", "secret_key", "str", "",
            "S3 secret access key; better as DDI_LITE_ARTIFACTS_SECRET_KEY than here."),
    Setting("artifacts", "redirect", "bool", False,
            "Answer a device's artifact GET with a 302 to a presigned S3 URL instead of "
            "streaming the bytes through ddi-lite (S3 store only). false: not every device "
            "client follows redirects, and ddi-lite then sees every range and resume."),
    Setting("artifacts", "redirect_seconds", "positive", 300,
            "How long a presigned download URL is valid: the device must start its "
            "download within it, and a leaked URL serves nobody for long."),
)


def blob_store(config, data_dir=None):
    """The blob store `config` names, for the data directory `data_dir` (the configured one
    when None). A store outside the data directory is shared: other nodes may write it."""
    location = config["artifacts", "store"].strip()
    data_dir = config["server", "data_dir"] if data_dir is None else data_dir
    if not location:
        return BlobStore(os.path.join(data_dir, "artifacts"))
    if not location.startswith(S3_SCHEME):
        return BlobStore(os.path.abspath(os.path.expanduser(location)), shared=True)
    try:
        from artifacts import s3
        return s3.S3BlobStore(location, config["artifacts", "endpoint"],
                              config["artifacts", "region"], config["artifacts", "access_key"],
                              config["artifacts", "secret_key"])
    except ImportError as missing:
        raise ConfigError("[artifacts] store = %s needs boto3: pip install 'ddi-lite[s3]' (%s)"
                          % (location, missing))
    except ValueError as error:
        raise ConfigError("[artifacts] store: %s" % error)
    except OSError as error:  # s3.StoreUnreachable: the bucket cannot be used
        raise ConfigError(str(error))
