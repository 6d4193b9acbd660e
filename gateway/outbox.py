"""The durable ordered outbox: device reports (feedback, configData, installedBase,
confirmation and cancel feedback) are committed to gateway.sqlite before the device gets its
200, and a thread delivers them upstream, oldest first per device, backing off while upstream
is unreachable and carrying on after a restart from what is on disk.

What is exactly-once and what is not:
- A device that repeats its last report (its answer was lost) adds nothing: identical
  consecutive reports of a device to the same resource are one item (state.enqueue).
- An item is marked delivered in the same transaction that records upstream's answer, so a
  restart never sends a delivered item again.
- Between upstream committing a report and the gateway hearing the answer, a cut link or a
  kill leaves the item undelivered, and it is sent again: delivery to upstream stays
  at-least-once for that window, as for any client of an HTTP API without idempotency keys
  (DDI has none). hawkBit then records that status entry twice.

Any other 4xx answer is final (upstream refuses that report and always will: e.g. the action was
cancelled meanwhile); it is marked delivered, with the status kept, so that the device's later
reports are not held behind it. A 5xx, 401, 403, 408, 429 or no answer is tried again later.
"""

import logging
import threading

from gateway.upstream import UpstreamDown, now_ms

log = logging.getLogger("ddi-lite.gateway")

# Back-off while upstream does not answer: from the first to the longest wait, doubling.
FIRST_RETRY_SECONDS = 0.5
LONGEST_RETRY_SECONDS = 30.0
# Answers that say "not now" rather than "never": a wrong or revoked gateway token is an
# operator's to fix, and the reports must wait for it, not be dropped.
RETRIED_STATUSES = (401, 403, 408, 429)
DELIVERED, LATER, DOWN = "delivered", "later", "down"


class Delivery:
    """The thread that empties the outbox into upstream."""

    def __init__(self, state, upstream, upstream_auth, delivered=None):
        """`upstream_auth(item)`: the Authorization header to send an item with.
        `delivered(item, status)`: called after an item is delivered."""
        self.state = state
        self.upstream = upstream
        self.upstream_auth = upstream_auth
        self.on_delivered = delivered
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.figures = {"delivered": 0, "attempts_failed": 0}

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gateway-outbox",
                                            daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        self._wake.set()

    def wake(self):
        self._wake.set()

    def _run(self):
        backoff = FIRST_RETRY_SECONDS
        while not self._stop.is_set():
            self._wake.clear()
            try:
                ok = self.deliver_pending()
            except Exception:  # never let the thread die: the outbox would stall silently
                log.exception("outbox delivery failed")
                ok = False
            if ok:
                backoff = FIRST_RETRY_SECONDS
                self._wake.wait(5.0)
            else:
                self._wake.wait(backoff)
                backoff = min(backoff * 2, LONGEST_RETRY_SECONDS)

    def deliver_pending(self):
        """Deliver what is pending, device by device in order; False when something waits
        for a later attempt. Upstream down stops the round; a device whose report upstream
        does not take now (its revoked token, in pass-through) holds up only its own."""
        all_delivered = True
        for controller_id in self.state.pending_devices():
            while not self._stop.is_set():
                item = self.state.next_pending(controller_id)
                if item is None:
                    break
                outcome = self._deliver(item)
                if outcome == DOWN:
                    return False
                if outcome == LATER:
                    all_delivered = False
                    break
        return all_delivered

    def _deliver(self, item):
        """DELIVERED, LATER (this device's report, not now) or DOWN (upstream)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        auth = self.upstream_auth(item)
        if auth:
            headers["Authorization"] = auth
        try:
            answer = self.upstream.request(
                item.method, self.upstream.device_path(item.controller_id, item.resource),
                headers, item.body)
        except UpstreamDown as error:
            self.state.attempt_failed(item.id, str(error))
            self.figures["attempts_failed"] += 1
            return DOWN
        if answer.status in RETRIED_STATUSES:
            self.upstream.note_error("%s %s of %s: HTTP %d" % (
                item.method, item.resource, item.controller_id, answer.status))
            self.state.attempt_failed(item.id, "HTTP %d" % answer.status)
            self.figures["attempts_failed"] += 1
            return LATER
        if answer.status >= 300:
            log.warning("upstream refused %s %s of %s: HTTP %d", item.method, item.resource,
                        item.controller_id, answer.status)
        self.state.delivered(item, answer.status, now_ms())
        self.figures["delivered"] += 1
        if self.on_delivered is not None:
            self.on_delivered(item, answer.status)
        return DELIVERED
