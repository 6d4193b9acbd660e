"""The connection layer: Waitress, with what it lacks against slow and hostile clients.

`Server(app, ...)` binds the listening sockets (or serves those `bind()` made, in a process
that forked after binding them) and runs Waitress's event loop with gated connections: a
deadline for a request's headers, no body buffered before the app has authenticated its
request (beyond what came with the headers), slow connections parked out of the loop's way,
and room made at the connection limit; with worker processes on one socket, each takes its
share of new connections. `Server.stop()` ends it gracefully: no new connections, the
requests in flight answered within a bound. It knows the app only as a WSGI callable and the
two environ keys below; it imports nothing of ddi-lite.
"""

import io
import logging
import math
import resource
import socket
import time

import waitress.adjustments
import waitress.channel
import waitress.parser
import waitress.server
import waitress.task
import waitress.utilities
import waitress.wasyncore

log = logging.getLogger("ddi-lite")

# Waitress reads a whole body before it calls the app, so the gate asks the app first (see
# `BodyQuestion`): the request, its body unread, carries BEFORE_BODY, and the app answers
# 100 (setting BODY_LIMIT, the most a chunked body may bring) or a refusal. Without this
# server (WebTest) the question is never asked.
BEFORE_BODY = "ddi_lite.before_body"
BODY_LIMIT = "ddi_lite.body_limit"

# Waitress parses requests on its event-loop thread and hands each one, body included, to a
# worker thread. What it lacks against slow or hostile clients is added here: a deadline for
# a request's headers (its channel_timeout restarts with every byte, so a client dripping a
# byte a second would hold a connection for ever); a stop before a body until the app has
# authenticated the request, so that no one without credentials makes the server buffer a
# byte more than came with the headers (the stop asks the app what `Expect: 100-continue` asks, BEFORE_BODY); slow
# connections parked out of the loop's way; and at the connection limit, room made by closing
# the quietest connection not being served instead of leaving new ones waiting.


class GatedRequest(waitress.parser.HTTPRequestParser):
    """A request as Waitress parses it, which stops where its headers end if a body follows:
    the bytes that came with the headers are held, until the app's answer arrives."""

    held = None  # body bytes received while waiting for the app; None when not waiting
    asked = False
    answer = None  # (status, headers, body, body limit), from a worker to the event loop
    body_limit = None  # the route's largest body, once the app has let it come
    wants_continue = False

    def __init__(self, adj):
        super().__init__(adj)
        self.started = time.monotonic()

    def received(self, data):
        if self.held is not None:
            self.held += data
            return len(data)
        consumed = super().received(data)
        if self.body_limit is None:
            if self.headers_finished and not self.completed and self._body_came_along(
                    data, consumed):
                # Read already, with the headers (one receive, a few KiB at most): there is
                # nothing left to spare the server, and asking the app first would cost a
                # second call of it and two more turns of the loop. A device's feedback
                # comes so; the app still refuses it if not authenticated, or if too large.
                self.body_limit = self.content_length
            elif self.headers_finished and not self.completed:
                self.held = b""
                # A client that asked `Expect: 100-continue` hears it once the app agrees.
                self.wants_continue, self.expect_continue = self.expect_continue, False
        elif self.body_bytes_received > self.body_limit:  # a chunked body, its size unsaid
            self.error = waitress.utilities.RequestEntityTooLarge(
                "exceeds the %d bytes this resource takes" % self.body_limit)
            self.completed = True
        return consumed


    def _body_came_along(self, data, consumed):
        return (not self.chunked and not self.expect_continue
                and len(data) - consumed >= self.content_length)


class GatedChannel(waitress.channel.HTTPChannel):
    """Waitress's connection with the header deadline and the stop before a body."""

    parser_class = GatedRequest
    spoke = False  # whether the client has sent a byte yet
    woken = False  # just back from a ParkedChannel: may read on this turn

    def __init__(self, server, sock, addr, adj, map=None):
        self.opened = time.monotonic()
        super().__init__(server, sock, addr, adj, map)
        self._watch()

    def received(self, data):
        self.spoke = True
        done = super().received(data)
        request = self.request
        if request is not None and request.held is not None and not request.asked:
            request.asked = True
            self.server.add_task(BodyQuestion(self, request))
        self._watch()
        return done

    def _watch(self):
        """The event loop asks every connection on every turn whether it would read, and
        most are served or idle between requests: they get Waitress's own answer, and only
        a connection that owes headers or waits for the app gets `watched_readable`. (An
        extra microsecond per connection and turn cost a tenth of the poll rate.)"""
        request = self.request
        if self._headers_owed_since() is not None or request is not None and (
                request.held is not None or request.answer is not None):
            self.readable = self.watched_readable
        else:
            self.__dict__.pop("readable", None)

    def watched_readable(self):
        """readable() while the connection owes headers or waits for the app; asked at least
        once a second (the loop's timeout) unless parked."""
        request = self.request
        if request is not None and request.answer is not None:
            self._take_answer(request)
            self._watch()
        elif request is not None and request.held is not None:
            return False
        else:
            owed_since = self._headers_owed_since()
            if owed_since is not None:
                waited = time.monotonic() - owed_since
                if waited > self.server.header_timeout:
                    self.will_close = True
                    return False
                # Headers still owed after a quarter of a second: a very slow link, a
                # slow-loris or a silent socket. Such a connection is read on whole seconds
                # only, all of them in one turn of the loop, and waits parked in between,
                # which leaves the other turns (and the GIL) to the devices. One with
                # something to write (an answer, its closing) is never parked: the loop
                # asks writable() of the connection right after this.
                if waited > 0.25 and not self.woken and not self.writable():
                    self._map[self._fileno] = ParkedChannel(
                        self, math.floor(time.monotonic()) + 1)
                    return False
                self.woken = False
        return super().readable()

    def close_when_answered(self):
        """Close once the answers begun are sent, reading no further request (a stop)."""
        self.close_when_flushed = True
        self._map[self._fileno] = self  # in case it is parked

    def close_soon(self):
        """Close on the loop's next turn, not now: a descriptor closed now could be reused on
        this turn by a new connection, which would then get the old one's events."""
        self.will_close = True
        self._map[self._fileno] = self  # in case it is parked

    def _headers_owed_since(self):
        """Since when the client owes a request's headers: since the request's first byte,
        or since the connection opened while the client has said nothing; None while it owes
        none (idle between requests, or being served)."""
        request = self.request
        if request is not None:
            return None if request.headers_finished else request.started
        return None if self.spoke else self.opened

    def _take_answer(self, request):
        status, headers, body, limit = request.answer
        request.answer = None
        held, request.held = request.held, None
        if status.startswith("100"):
            request.body_limit = limit
            request.expect_continue = request.wants_continue
            if held:
                self.received(held)
                return
            with self.requests_lock:
                if request.expect_continue and not self.requests and not self.sent_continue:
                    self.send_continue()
            return
        request.error = Refusal(status, headers, body)
        request.completed = True
        with self.requests_lock:
            self.requests.append(request)
            if len(self.requests) == 1:
                self.server.add_task(self)
            self.request = None


class GatedServer(waitress.server.TcpWSGIServer):
    """Waitress's listening socket, making GatedChannels, and accepting differently. Waitress
    accepts one connection per turn of its loop, so after a burst of hundreds (slow-loris
    sockets coming back at once) a device would wait hundreds of turns: this one accepts all
    that wait, up to a bound. At connection_limit Waitress accepts nothing until a connection
    closes, so hostile ones holding every place would starve the devices: this one closes,
    for each new connection, the one quiet longest among those not being served (silent,
    idle between requests, or still sending headers). Only connections at work keep their
    place for sure."""

    channel_class = GatedChannel
    accepts_per_turn = 64
    # Set when worker processes serve one listening socket (service.workers.AcceptShare):
    # `publish(open)` tells the others how many connections this one holds, `may_accept(open)`
    # whether this one should take the next. Every process polling the socket is woken for
    # a new connection and the first to call accept() wins it, so without this one process
    # would take a whole burst (wrk's 16 connections, devices after a network outage). What
    # is counted is the event loop's map: its connections, and as many listeners and wake-up
    # pipes in every worker.
    share = None
    DECLINE_LIMIT = 50

    def __init__(self, application, map, header_timeout, **options):
        self.header_timeout = header_timeout
        self._declined = 0
        super().__init__(application, map, **options)

    def readable(self):
        now = time.time()
        if now >= self.next_channel_cleanup:  # Waitress's idle_timeout
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        if self.share is not None:
            self.share.publish(len(self._map))
        return self.accepting and (len(self._map) < self.adj.connection_limit
                                   or any(True for _ in self._not_served()))

    def handle_accept(self):
        quietest = None  # those that may make room, the quietest last; looked for once a turn
        for turn in range(self.accepts_per_turn):
            if not self._my_share(waiting=turn == 0):
                return
            open_before = len(self._map)
            super().handle_accept()
            if len(self._map) == open_before:  # no connection was waiting
                return
            if self.share is not None:
                self.share.publish(len(self._map))
            if len(self._map) > self.adj.connection_limit:
                if quietest is None:
                    quietest = sorted(self._not_served(), key=lambda channel: channel.last_activity,
                                      reverse=True)
                if not quietest:
                    return
                quietest.pop().close_soon()

    def _my_share(self, waiting):
        """Whether to accept the next connection. A process holding more than another leaves
        it to that one -- unless it has left a `waiting` one (the socket was readable)
        DECLINE_LIMIT times in a row: the other one may hang, and a connection must not wait
        for ever. Each time it leaves a waiting one it pauses a millisecond, since the socket
        stays readable until someone accepts."""
        if self.share is None or self.share.may_accept(len(self._map)) or \
                self._declined >= self.DECLINE_LIMIT:
            self._declined = 0
            return True
        if waiting:
            self._declined += 1
            time.sleep(0.001)
        return False

    def _not_served(self):
        """The connections neither being served nor closing: silent, idle between requests,
        or still sending headers."""
        for channel in self.active_channels.values():
            if not (channel.requests or channel.will_close or channel.close_when_flushed) and \
                    (channel.request is None or not channel.request.headers_finished):
                yield channel


class ParkedChannel:
    """Stands in the event loop's map for a connection that owes its headers slowly, until
    its next read is due. The loop asks every entry on every turn whether it would read or
    write: for a parked connection that costs a seventh of what asking the connection costs,
    so hundreds of slow ones add a fraction of a millisecond to a turn instead of
    milliseconds. The connection still counts against max_connections."""

    accepting = False

    def __init__(self, channel, until):
        self.channel = channel
        self.until = until

    def readable(self):
        if time.monotonic() >= self.until:
            self.channel.woken = True
            self.channel._map[self.channel._fileno] = self.channel  # asked from next turn on
        return False

    def writable(self):
        return False

    def close(self):
        """Waitress closes every entry of the map when it stops."""
        self.channel.close()


class BodyQuestion:
    """A worker thread's task: call the app with a request whose body is unread, marked
    BEFORE_BODY, and hand its answer to the event loop."""

    def __init__(self, channel, request):
        self.channel = channel
        self.request = request

    def service(self):
        environ = waitress.task.WSGITask(self.channel, self.request).get_environment()
        environ["wsgi.input"] = io.BytesIO()
        environ[BEFORE_BODY] = True
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
        chunks = self.channel.server.application(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        limit = environ.get(BODY_LIMIT, self.channel.adj.max_request_body_size)
        self.request.answer = (started[0], started[1], body, limit)
        self.channel.server.pull_trigger()

    def cancel(self):
        """Waitress is shutting down: no one waits for the answer."""


class Workers(waitress.task.ThreadedTaskDispatcher):
    """Waitress's worker threads, without its "Task queue depth is N" warning: Waitress logs
    it for every request that finds no idle thread, which under load is tens of thousands of
    lines a minute and a twentieth of a poll's time. The depth is kept as a figure instead:
    the requests waiting for a thread now, and the most that have waited at once."""

    max_depth = 0

    def add_task(self, task):
        with self.lock:
            self.queue.append(task)
            self.queue_cv.notify()
            depth = len(self.queue) - self._idle()
            if depth > self.max_depth:
                self.max_depth = depth

    def depth(self):
        with self.lock:
            return max(0, len(self.queue) - self._idle())

    def _idle(self):
        return len(self.threads) - self.stop_count - self.active_count


class Refusal(waitress.utilities.Error):
    """The app's answer to a request whose body it would not take, sent the way Waitress
    sends its own errors: the connection closes after it, the body unread."""

    def __init__(self, status, headers, body):
        super().__init__(body)
        self.answer = (status, headers, body)

    def to_response(self, ident=None):
        return self.answer


def run_event_loop(sockets, timeout, done):
    """Waitress's event loop, with select() while every descriptor is below 1024, as Waitress
    has it by default, and poll() beyond, where select() fails, until `done()` (asked before
    every turn) is true. Waitress's poll() loop would do for all, but it answered 200 polls
    at a third of the rate in `tests/bench/run.py --only poll` (304 polls it did not slow);
    that is only paid while about 1000 files are open."""
    while sockets and not done():
        if max(sockets) < SELECT_LIMIT:
            waitress.wasyncore.poll(timeout, sockets)
        else:
            waitress.wasyncore.poll2(timeout, sockets)


# select() watches descriptors below FD_SETSIZE only (1024 on Linux).
SELECT_LIMIT = 1024


def connections_within_open_files(max_connections):
    """max_connections, after raising the soft limit of open files as far as it needs: a
    connection holds up to three (its socket, the temporary files of a large request or
    response, a file being downloaded). Lowered, with a warning, where the hard limit is
    too low; Waitress would otherwise spin on failing accept() calls."""
    needed = 3 * max_connections + OTHER_OPEN_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitting = max(1, (soft - OTHER_OPEN_FILES) // 3)
        log.warning("max_connections = %d needs %d open files, %d are allowed (ulimit -n): "
                    "serving %d connections at most", max_connections, needed, soft, fitting)
        return fitting
    return max_connections


# Connections the kernel holds for a listening socket until one is accepted.
BACKLOG = 1024


def bind(host, port):
    """Listening sockets on `host` and `port`, as `Server` binds them (one per address the
    host resolves to). Bound once by a process that then forks workers, each of which serves
    them (`Server(..., sockets=...)`): the kernel hands each new connection to one of them."""
    sockets = []
    try:
        for family, kind, proto, address in waitress.adjustments.Adjustments(
                host=host, port=port).listen:
            listener = socket.socket(family, kind, proto)
            sockets.append(listener)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(BACKLOG)
    except OSError:
        for listener in sockets:
            listener.close()
        raise
    return sockets


# Files open besides the connections': database, logs, Waitress's wake-up pipe, listeners.
OTHER_OPEN_FILES = 100


class Server:
    """The listening sockets and worker threads serving `app`, with the gated connections
    above; `run()` serves until `stop()` has been called and the requests in flight are
    answered, or the stop's bound has passed."""

    stop_by = None  # time.monotonic() by which a stop must be done; None while serving
    finished = False  # run() is over: nothing left to wake

    def __init__(self, app, host, port, threads, max_connections, header_timeout,
                 idle_timeout, max_header_bytes, max_body_bytes, sockets=None, share=None):
        """`sockets`: listening sockets made by `bind()` to serve instead of binding
        `host` and `port`; `share`: how this process takes its share of the connections
        to those sockets when other processes serve them too (see `GatedServer.share`)."""
        where = {"sockets": sockets} if sockets else {"host": host, "port": port}
        self.settings = waitress.adjustments.Adjustments(
            threads=threads, ident="ddi-lite", **where,
            # Waitress drops Forwarded and X-Forwarded-* unless they come from its one
            # trusted_proxy address; the app applies its own list of trusted proxies.
            clear_untrusted_proxy_headers=False,
            # Waitress queues up to 16 MiB per connection in memory by default.
            outbuf_high_watermark=1 << 20,
            # The largest body any route takes (the app holds each route to its own, and no
            # body is read before the app has authenticated its request).
            max_request_body_size=max_body_bytes,
            # Slow or idle clients must not starve the devices: room for hundreds of slow
            # ones, each soon closed (Waitress: 100 connections, 120 s of silence, 256 KiB of
            # headers, silent connections looked for every 30 s).
            connection_limit=connections_within_open_files(max_connections),
            channel_timeout=idle_timeout,
            max_request_header_size=max_header_bytes,
            cleanup_interval=1,
            backlog=BACKLOG)
        self.workers = Workers()
        self.sockets = {}
        if sockets:
            self.listeners = [
                GatedServer(app, self.sockets, header_timeout, dispatcher=self.workers,
                            adj=self.settings, _sock=listener, bind_socket=False,
                            sockinfo=(listener.family, listener.type, listener.proto,
                                      listener.getsockname()))
                for listener in sockets]
            for listener in self.listeners:
                listener.share = share
        else:
            self.listeners = [
                GatedServer(app, self.sockets, header_timeout, dispatcher=self.workers,
                            adj=self.settings, sockinfo=address)
                for address in self.settings.listen]
        self.workers.set_thread_count(threads)

    def figures(self):
        """What service.metrics reports of the server (its SERVER_FIGURES)."""
        workers = self.workers
        return {"queue_depth": workers.depth(), "queue_depth_max": workers.max_depth,
                "busy_threads": workers.active_count, "threads": len(workers.threads),
                "connections": sum(len(listener.active_channels)
                                   for listener in list(self.sockets.values())
                                   if isinstance(listener, GatedServer))}

    def run(self):
        try:
            run_event_loop(self.sockets, self.settings.asyncore_loop_timeout, self._stopped)
        finally:
            self.finished = True
            waitress.wasyncore.close_all(self.sockets)
            # Idle workers end at once; one still in the app after a cut is not waited for
            # long (it is a daemon thread, and Waitress logs it).
            self.workers.shutdown(timeout=0.5)

    def stop(self, timeout):
        """Stop accepting connections, and end `run()` once the requests in flight are
        answered or `timeout` seconds have passed; a second call ends it at once. Safe in a
        signal handler: it notes the time and wakes the event loop, nothing more."""
        now = time.monotonic()
        self.stop_by = now + timeout if self.stop_by is None else now
        if not self.finished:
            self.listeners[0].pull_trigger()

    def _stopped(self):
        """Asked by the event loop before each turn: whether serving is over. Once a stop
        has begun, every connection not at work (silent, idle between requests, still sending
        headers, or done with its last answer) is closed as soon as its answers are sent, and
        no further request is read from it. A connection whose request's headers have arrived
        is at work until its answer is sent, a download to a slow reader included."""
        if self.stop_by is None:
            return False
        beginning = self.listeners[0].accepting
        for listener in self.listeners:
            # Only the listening socket: the listener's wake-up pipe (which Waitress's
            # close() closes too) still carries the workers' answers to the loop.
            waitress.wasyncore.dispatcher.close(listener)
            for channel in list(listener._not_served()):
                channel.close_when_answered()
        if beginning:
            log.info("stopping: no new connections; requests in flight get %.0f s to finish",
                     max(0, self.stop_by - time.monotonic()))
        at_work = sum(len(listener.active_channels) for listener in self.listeners)
        if not at_work:
            return True
        if time.monotonic() >= self.stop_by:
            log.warning("stopping now: %d connection(s) closed before their answer was sent",
                        at_work)
            return True
        return False
