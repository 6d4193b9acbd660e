"""The baselines ddi-lite is measured against: the least a Bottle app on Waitress can do.

    bench_baselines.py bare --port P --threads T --body-size N
        answers GET /<tenant>/controller/v1/<controller_id> with a constant JSON document of
        N bytes and an ETag (304 when If-None-Match carries it): a poll without the work.
    bench_baselines.py static --port P --threads T --file PATH
        answers GET .../softwaremodules/<module_id>/artifacts/<filename> with Bottle's own
        static_file of PATH (ranges included).

Waitress gets the output buffer limit ddi-lite sets (`service.connections.Server`); the gate
ddi-lite adds around connections is part of what is measured against it.
"""

import argparse
import hashlib
import json
import os

import bottle
import waitress

POLL_ROUTE = "/<tenant>/controller/v1/<controller_id>"


def constant_document(size):
    """A poll-like JSON document padded to exactly `size` bytes (at least its bare form)."""
    document = {"config": {"polling": {"sleep": "00:05:00"}}, "_links": {"pad": {"href": ""}}}
    bare = len(json.dumps(document, separators=(",", ":")))
    document["_links"]["pad"]["href"] = "x" * max(0, size - bare)
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def bare_app(size):
    body = constant_document(size)
    etag = '"0%s"' % hashlib.md5(body).hexdigest()
    app = bottle.Bottle()

    @app.get(POLL_ROUTE)
    def poll(tenant, controller_id):
        if bottle.request.environ.get("HTTP_IF_NONE_MATCH") == etag:
            return bottle.HTTPResponse(b"", 304, {"ETag": etag})
        return bottle.HTTPResponse(body, 200, {"Content-Type": "application/hal+json",
                                               "ETag": etag})
    return app


def static_app(path):
    app = bottle.Bottle()

    @app.get(POLL_ROUTE + "/softwaremodules/<module_id>/artifacts/<filename>")
    def download(tenant, controller_id, module_id, filename):
        return bottle.static_file(os.path.basename(path), root=os.path.dirname(path),
                                  mimetype="application/octet-stream")
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("bare", "static"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--body-size", type=int, default=100)
    parser.add_argument("--file")
    args = parser.parse_args()
    app = bare_app(args.body_size) if args.kind == "bare" else static_app(args.file)
    waitress.serve(app, host="127.0.0.1", port=args.port, threads=args.threads, _quiet=True,
                   outbuf_high_watermark=1 << 20)


if __name__ == "__main__":
    main()
