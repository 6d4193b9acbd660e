"""client.http: the one HTTP/1.1 client of the programs in `client/`, standard library only.

`HttpPool` speaks to one scheme, host and port over asyncio streams, with at most N requests
at a time on connections kept alive between them: the simulator runs thousands of devices on
one pool, the operator commands drive a pool of one through `Client`, synchronously.

A request body is bytes, or an iterable of byte chunks of a known length (an upload, streamed
from its file); a server may answer such a body before it has read it all (413) and close the
connection, and that answer is still read. An answer's body comes with a Content-Length,
chunked, or delimited by the connection's end; it is kept (up to a limit) or handed to a sink
chunk by chunk. Every answer is returned whatever its status: what a status means is the
program's business. What keeps a request from its answer is an `HttpError`.
"""

import asyncio
import collections
import os
import socket
import ssl
import time
import urllib.parse

DEFAULT_PORTS = {"http": 80, "https": 443}
JSON = "application/json"
MAX_ANSWER_BYTES = 4 << 20
READ_BYTES = 65536


class HttpError(Exception):
    """A request got no complete answer. `reason` says why in a few words ("Connection
    refused"), the message may say more."""

    def __init__(self, reason, detail=None):
        Exception.__init__(self, detail or reason)
        self.reason = reason


class ConnectionFailed(HttpError):
    """The server cannot be reached, or the connection broke."""


class AnswerCutShort(ConnectionFailed):
    """The connection ended in the middle of an answer."""


class Timeout(HttpError):
    """The request took longer than its pool's timeout."""


class MalformedAnswer(HttpError):
    """What came back is not an HTTP/1.x answer."""


class AnswerTooLarge(HttpError):
    """An answer body over the pool's limit (a body that goes to a sink has none)."""


Url = collections.namedtuple("Url", "scheme host port host_header path")


def parse_url(url):
    """What a client needs of http(s)://HOST[:PORT][/PATH] (the path without its trailing
    slash); ValueError when the URL is not one."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port  # ValueError when it is no port number
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == 0:
        raise ValueError("not an http(s) URL: %r" % url)
    return Url(parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme],
               parts.netloc.rpartition("@")[2], parts.path.rstrip("/"))


HttpAnswer = collections.namedtuple("HttpAnswer", "status reason headers body seconds")


class HttpPool:
    """Requests to one server: at most `size` at a time, over connections kept alive and
    shared by all of them, each bounded by `timeout` seconds (see `_Deadline`)."""

    def __init__(self, url, size, timeout, admit=None, max_answer_bytes=MAX_ANSWER_BYTES):
        """`url` is a parse_url() result. `admit()`, if given, is called when a request is
        about to go out; it may raise to keep it."""
        self.url = url
        self.ssl_context = ssl.create_default_context() if url.scheme == "https" else None
        self.timeout = timeout
        self.admit = admit
        self.max_answer_bytes = max_answer_bytes
        self._idle = []
        self._size = size
        self._slots = None  # made in the loop that runs the requests

    async def request(self, method, target, headers, body=b"", length=None, sink=None):
        """Send one request; the answer. `body` is bytes, or an iterable of byte chunks that add
        up to `length`. A 2xx answer's body goes to `sink(chunk)` instead of `body` when a sink
        is given. `seconds` excludes the wait for a free connection."""
        streamed = not isinstance(body, bytes)
        lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + self.url.host_header]
        lines += ["%s: %s" % item for item in headers.items()]
        if streamed or body or method in ("POST", "PUT"):
            lines.append("Content-Length: %d" % (length if streamed else len(body)))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self._slots is None:
            # Python 3.9's asyncio binds a Semaphore to the loop current when it is made;
            # a pool made outside its loop (Client) must not make it in __init__.
            self._slots = asyncio.Semaphore(self._size)
        async with self._slots:
            if self.admit is not None:
                self.admit()
            started = time.perf_counter()
            deadline = _Deadline(self.timeout)
            if streamed:
                exchange = self._exchange_streamed(head, body, sink, deadline)
            else:
                exchange = self._exchange(head + body, sink)
            try:
                status, reason, headers, body = await deadline.run(exchange)
            except asyncio.IncompleteReadError:
                raise AnswerCutShort("connection closed during an answer")
            except OSError as error:  # ssl.SSLError is one too
                raise _connection_failed(error)
            except ValueError as error:  # a line over the stream's limit, a bad Content-Length
                raise MalformedAnswer("malformed HTTP answer", str(error))
            return HttpAnswer(status, reason, headers, body, time.perf_counter() - started)

    async def _exchange(self, message, sink):
        while True:
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await self._connect()
            try:
                writer.write(message)
                await writer.drain()
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError("the server closed the connection")
            except ConnectionError:
                writer.close()
                if reused:
                    continue  # the server closed it while it was idle: try a fresh one
                raise
            except BaseException:
                writer.close()
                raise
            try:
                status, reason, headers, body, keep_alive = await self._answer(
                    reader, status_line, sink)
            except BaseException:
                writer.close()
                raise
            if keep_alive:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, reason, headers, body

    async def _exchange_streamed(self, head, chunks, sink, deadline):
        """Send the body chunk by chunk while the answer is read as it comes: a server may
        refuse a body before it has read it all (too large) and close the connection, and its
        answer still says why. Not retried on a fresh connection: the chunks are spent."""
        reader, writer = self._idle.pop() if self._idle else await self._connect()
        answer = asyncio.ensure_future(self._whole_answer(reader, sink))
        sent, send_error = False, None
        try:
            writer.write(head)
            try:
                for chunk in chunks:
                    # A server that refuses the body answers, then resets the connection; a
                    # write that meets the reset closes it with the answer unread, and writes
                    # the kernel takes at once never let the loop read. So the loop gets two
                    # turns before each chunk: one polls the connection, the next runs the
                    # reads it found.
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    if answer.done():
                        break
                    writer.write(chunk)
                    await writer.drain()
                    deadline.extend()
                else:
                    sent = True
            except OSError as error:
                send_error = error
            try:
                status, reason, headers, body, keep_alive = await answer
            except (OSError, asyncio.IncompleteReadError):
                if send_error is not None:
                    raise send_error
                raise
        except BaseException:
            if answer.done() and not answer.cancelled():
                answer.exception()  # seen: the request fails for another reason
            answer.cancel()
            writer.close()
            raise
        if keep_alive and sent:
            self._idle.append((reader, writer))
        else:
            writer.close()  # the server may still wait for the rest of the body
        return status, reason, headers, body

    async def _connect(self):
        """A new connection (TLS for https), to the first of the host's addresses that
        accepts one, as socket.create_connection does."""
        loop = asyncio.get_running_loop()
        failure = None
        for family, kind, protocol, _, address in await loop.getaddrinfo(
                self.url.host, self.url.port, type=socket.SOCK_STREAM):
            sock = socket.socket(family, kind, protocol)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
                break
            except OSError as error:
                sock.close()
                failure = error
            except BaseException:
                sock.close()
                raise
        else:
            # asyncio words a refusal "Connect call failed (address)"; say "Connection refused".
            raise ConnectionFailed(os.strerror(failure.errno) if failure.errno else str(failure),
                                   str(failure))
        try:
            return await asyncio.open_connection(
                sock=sock, ssl=self.ssl_context,
                server_hostname=self.url.host if self.ssl_context else None)
        except BaseException:
            sock.close()
            raise

    async def _whole_answer(self, reader, sink):
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        return await self._answer(reader, status_line, sink)

    async def _answer(self, reader, status_line, sink):
        version, status, reason = _status_line(status_line)
        if status < 200:
            # Interim answers only follow `Expect: 100-continue`, which is never sent.
            raise MalformedAnswer("malformed HTTP answer", "unexpected HTTP %d" % status)
        headers = {}
        while True:
            line = await reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            if not line.strip():
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        if status in (204, 304):
            return status, reason, headers, b"", keep_alive
        body = _AnswerBody(sink if 200 <= status < 300 else None, self.max_answer_bytes)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await _read_chunked(reader, body)
        elif "content-length" in headers:
            await _read_exactly(reader, int(headers["content-length"]), body)
        else:
            while True:
                chunk = await reader.read(READ_BYTES)
                if not chunk:
                    break
                body.add(chunk)
            keep_alive = False
        return status, reason, headers, b"".join(body.parts), keep_alive

    def close(self):
        while self._idle:
            self._idle.pop()[1].close()


class _Deadline:
    """How long a request may take: its pool's timeout from the start, counted again from each
    chunk of a streamed body, so that an upload is bounded by its pauses, not its length."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.extend()

    def extend(self):
        self.at = time.monotonic() + self.seconds

    async def run(self, exchange):
        """The exchange's result; Timeout, with the exchange cancelled, once the time is up."""
        task = asyncio.ensure_future(exchange)
        try:
            while not task.done():
                remaining = self.at - time.monotonic()
                if remaining <= 0:
                    task.cancel()
                    await asyncio.wait([task])  # it closes its connection
                    raise Timeout("timed out")
                await asyncio.wait([task], timeout=remaining)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait([task])
            raise
        return task.result()


def _connection_failed(error):
    """An OSError as ConnectionFailed (socket errors keep their words in `strerror`)."""
    return ConnectionFailed(error.strerror or str(error) or type(error).__name__, str(error))


def _status_line(line):
    parts = line.decode("latin-1").rstrip("\r\n").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise MalformedAnswer("malformed HTTP answer", repr(line[:80]))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""


class _AnswerBody:
    """An answer's body: kept (up to `limit` bytes), or handed to a sink chunk by chunk."""

    def __init__(self, sink, limit):
        self.sink = sink
        self.limit = limit
        self.parts = []
        self.size = 0

    def add(self, chunk):
        if self.sink is not None:
            self.sink(chunk)
            return
        self.size += len(chunk)
        if self.size > self.limit:
            raise AnswerTooLarge("answer too large")
        self.parts.append(chunk)


async def _read_exactly(reader, count, body):
    while count > 0:
        chunk = await reader.read(min(count, READ_BYTES))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", count)
        body.add(chunk)
        count -= len(chunk)


async def _read_chunked(reader, body):
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise MalformedAnswer("malformed HTTP answer", "chunk size %r" % size_line[:80])
        if size == 0:
            break
        await _read_exactly(reader, size, body)
        if (await reader.readline()).strip():
            raise MalformedAnswer("malformed HTTP answer", "chunk longer than announced")
    while (await reader.readline()).strip():
        pass  # trailer fields


class Client:
    """An HttpPool of one connection for a program that makes one request at a time: it drives
    the pool on a private event loop, kept for the client's life so that the connection stays
    open from one request to the next."""

    def __init__(self, url, timeout, max_answer_bytes=MAX_ANSWER_BYTES):
        self._loop = asyncio.new_event_loop()
        self._pool = HttpPool(url, 1, timeout, max_answer_bytes=max_answer_bytes)

    def request(self, method, target, headers, body=b"", length=None):
        """As HttpPool.request, waiting for the answer."""
        task = self._loop.create_task(self._pool.request(method, target, headers, body, length))
        try:
            return self._loop.run_until_complete(task)
        except BaseException:
            if not task.done():  # Ctrl-C: let the request close its connection first
                task.cancel()
                self._loop.run_until_complete(asyncio.wait([task]))
            raise

    def close(self):
        self._pool.close()
        self._loop.run_until_complete(asyncio.sleep(0))  # the transports finish closing
        self._loop.close()
