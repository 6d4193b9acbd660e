"""A recording HTTP/1.1 proxy on 127.0.0.1 between a device client and ddi-lite.

It relays one request at a time per connection (keep-alive included), writes down what the
client asked for and what the server answered, and can cut the first full download of an
artifact after a number of body bytes, the way a dropped link cuts a transfer. The client sees
a response shorter than its Content-Length and the connection closed.

It understands exactly what the clients under test send: request bodies with a
Content-Length (no chunked uploads), `Expect: 100-continue` (answered by the proxy itself),
and responses with a Content-Length (ddi-lite never chunks).
"""

import socket
import threading
import time

HEAD_LIMIT = 64 * 1024


class Exchange:
    """One request and what became of it."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body
        self.status = None
        self.response_headers = {}
        self.response_body = b""  # only kept for small (JSON) bodies
        self.sent_body_bytes = 0
        self.cut = False
        self.cut_limit = None
        self.complete = False  # the whole answer (or its cut part) went to the client

    def __repr__(self):
        extra = " Range: %s" % self.headers["range"] if "range" in self.headers else ""
        return "<%s %s%s -> %s%s>" % (self.method, self.path, extra, self.status,
                                      " (cut)" if self.cut else "")


class _Closed(Exception):
    pass


def _read_head(sock, buffered):
    """(head bytes, rest) once `\\r\\n\\r\\n` has arrived; _Closed if the peer hangs up."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise _Closed()
        data += chunk
        if len(data) > HEAD_LIMIT:
            raise _Closed()
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_exactly(sock, count, buffered):
    data = buffered
    while len(data) < count:
        chunk = sock.recv(min(65536, count - len(data)))
        if not chunk:
            raise _Closed()
        data += chunk
    return data[:count], data[count:]


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], lines[1:], headers


class RecordingProxy:
    """Listens on a free loopback port and forwards to `upstream_port`.

    `cut_download_after`: cut the first whole-file GET of an artifact after that many body
    bytes (None: never cut).
    """

    def __init__(self, upstream_port, cut_download_after=None):
        self.upstream_port = upstream_port
        self.cut_download_after = cut_download_after
        self.exchanges = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._sockets = set()
        self._threads = []
        self._stopped = threading.Event()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def mark(self):
        """A position in the request sequence, for `completed(since=...)`."""
        with self._lock:
            return len(self.exchanges)

    def completed(self, since=0):
        """The exchanges whose answer has been relayed, in order (those after `since`)."""
        with self._lock:
            return [e for e in self.exchanges[since:] if e.complete]

    def requests(self, method=None, contains="", since=0):
        """Completed exchanges with this method whose path contains `contains`."""
        return [e for e in self.completed(since)
                if (method is None or e.method == method) and contains in e.path]

    def dump(self):
        """The exchanges so far, one per line; refused requests with their bodies."""
        with self._lock:
            exchanges = list(self.exchanges)
        lines = ["--- requests through the proxy ---"]
        for exchange in exchanges:
            lines.append(repr(exchange))
            if exchange.status != 200 and exchange.body:
                lines.append("    request body: %r" % exchange.body[:2000])
                lines.append("    response body: %r" % exchange.response_body[:500])
        return "\n".join(lines)

    def wait_for(self, predicate, timeout, what):
        """Poll the recorded exchanges until predicate(exchanges) is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snapshot = self.completed()
            if predicate(snapshot):
                return snapshot
            time.sleep(0.05)
        raise AssertionError("proxy: %s did not happen within %.0f s\n%s"
                             % (what, timeout, self.dump()))

    def close(self):
        self._stopped.set()
        try:
            # shutdown() wakes the accept() blocked in the other thread; close() alone does not.
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)

    # --- internals -------------------------------------------------------------------------

    def _accept(self):
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _track(self, sock):
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _take_cut(self, exchange):
        """Whether this exchange is the download to cut (only the first one is)."""
        if self.cut_download_after is None or exchange.method != "GET":
            return False
        if "/artifacts/" not in exchange.path or exchange.path.endswith(".MD5SUM"):
            return False
        if "range" in exchange.headers:
            return False
        with self._lock:
            if self.cut_download_after is None:
                return False
            self.cut_download_after, limit = None, self.cut_download_after
        exchange.cut_limit = limit
        return True

    def _serve(self, client):
        self._track(client)
        upstream = None
        client_buffer = b""
        try:
            upstream = self._track(socket.create_connection(("127.0.0.1", self.upstream_port),
                                                            timeout=30))
            client.settimeout(60)
            while not self._stopped.is_set():
                head, client_buffer = _read_head(client, client_buffer)
                request_line, header_lines, headers = _parse_head(head)
                method, path = request_line.split(" ")[:2]
                if headers.get("expect", "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    header_lines = [line for line in header_lines
                                    if not line.lower().startswith("expect:")]
                length = int(headers.get("content-length", "0") or 0)
                body, client_buffer = _read_exactly(client, length, client_buffer)
                exchange = Exchange(method, path, headers, body)
                with self._lock:
                    self.exchanges.append(exchange)
                upstream.sendall(("\r\n".join([request_line] + header_lines) + "\r\n\r\n")
                                 .encode("latin-1") + body)
                if not self._relay_response(exchange, upstream, client):
                    return
        except (_Closed, OSError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass
                    with self._lock:
                        self._sockets.discard(sock)

    def _relay_response(self, exchange, upstream, client):
        """Relay one response; False when the connection must end (cut, or close)."""
        buffered = b""
        while True:
            head, buffered = _read_head(upstream, buffered)
            status_line, _, headers = _parse_head(head)
            status = int(status_line.split(" ")[1])
            if status != 100:
                break
        exchange.status = status
        exchange.response_headers = headers
        if exchange.method == "HEAD" or status in (204, 304):
            length = 0
        else:
            length = int(headers.get("content-length", "-1"))
            if length < 0:
                raise _Closed()  # not something ddi-lite sends
        cut = self._take_cut(exchange) if status == 200 else False
        client.sendall(head + b"\r\n\r\n")
        remaining = length
        limit = exchange.cut_limit if cut else None
        small = length <= 8192
        while remaining > 0:
            chunk = buffered or upstream.recv(min(65536, remaining))
            buffered = b""
            if not chunk:
                raise _Closed()
            chunk = chunk[:remaining]
            if limit is not None and exchange.sent_body_bytes + len(chunk) >= limit:
                client.sendall(chunk[:limit - exchange.sent_body_bytes])
                exchange.sent_body_bytes = limit
                exchange.cut = True
                exchange.complete = True
                client.shutdown(socket.SHUT_RDWR)
                return False
            client.sendall(chunk)
            exchange.sent_body_bytes += len(chunk)
            if small:
                exchange.response_body += chunk
            remaining -= len(chunk)
        exchange.complete = True
        return headers.get("connection", "").lower() != "close"
