"""client.commands: `ddi-lite targets|upload|assign|actions|cancel|modules|sets|config|tags|
filters ...`, the operator's command line.

Each command talks to a running server over the Management API (/rest/v1), so it works from
another machine too: `ManagementClient` on client.http, the tables and the progress bar it
prints, and the artifact upload. The argparse definitions are in client.cli; the server's own
modules are never imported here.
"""

import base64
import collections
import getpass
import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.parse

from client import http
from client.http import JSON

UPLOAD_CHUNK_BYTES = 256 * 1024


class CommandFailed(Exception):
    """What an operator command tells instead of a traceback: one line, and the exit code
    (1: the server refused or cannot be reached; 2: the command line itself is wrong)."""

    def __init__(self, message, exit_code=1):
        Exception.__init__(self, message)
        self.exit_code = exit_code


def _reason(error):
    """An OSError in words (they keep them in `strerror`)."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class ManagementClient:
    """Requests to one server's /rest/v1 with HTTP Basic authentication and JSON.

    One connection serves all requests of a command. The password is asked for (or found
    missing) only when the first request needs it, so local mistakes are reported first.
    """

    timeout_seconds = 60
    # Documents are read whole; a page of 500 targets is well under a megabyte.
    max_answer_bytes = 64 << 20

    def __init__(self, url, user, password):
        try:
            parts = http.parse_url(url)
        except ValueError:
            raise CommandFailed("--url must look like http://HOST:PORT, not %r" % url, 2)
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self._root = parts.path + "/rest/v1"
        self._http = http.Client(parts, self.timeout_seconds, self.max_answer_bytes)

    def _authorization(self):
        if self._password is None:
            if not sys.stdin.isatty():
                raise CommandFailed("no password for %s: set DDI_LITE_PASSWORD or pass "
                                    "--password" % self.user, 2)
            self._password = getpass.getpass("Password of %s at %s: " % (self.user, self.url))
        credentials = ("%s:%s" % (self.user, self._password)).encode("utf-8")
        return "Basic " + base64.b64encode(credentials).decode("ascii")

    def call(self, method, path, document=None, query=None):
        """Send `document` (if any) as JSON; the answer's JSON document, None when empty."""
        if document is None:
            return self.exchange(method, path, query)
        return self.exchange(method, path, query, {"Content-Type": JSON},
                             json.dumps(document).encode("utf-8"))

    def exchange(self, method, path, query=None, headers=None, body=b"", length=None):
        """One request; `body` is bytes, or chunks sent one by one that add up to `length`."""
        target = self._root + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(headers or {}, Accept=JSON, Authorization=self._authorization())
        try:
            answer = self._http.request(method, target, headers, body, length)
        except http.HttpError as error:
            raise CommandFailed("cannot reach ddi-lite at %s: %s" % (self.url, error.reason))
        return self._document(method, path, answer)

    def _document(self, method, path, answer):
        if answer.status == 401:
            raise CommandFailed("login refused for user %s at %s" % (self.user, self.url))
        try:
            document = json.loads(answer.body.decode("utf-8")) if answer.body else None
        except ValueError:
            if answer.status < 400:
                raise CommandFailed("%s does not answer like ddi-lite (%s %s gave no JSON)"
                                    % (self.url, method, path))
            document = None
        if answer.status < 400:
            return document
        message = document.get("message") if isinstance(document, dict) else None
        if answer.status == 404:
            raise CommandFailed(message or "not found: %s %s" % (method, self._root + path))
        if message:
            raise CommandFailed("refused (HTTP %d): %s" % (answer.status, message))
        raise CommandFailed("refused (HTTP %d %s): %s %s" % (
            answer.status, answer.reason, method, self._root + path))

    def close(self):
        self._http.close()


def _segment(text):
    return urllib.parse.quote(text, safe="")


def _all_pages(client, path, query=None):
    """Every element of a paged collection, fetched with offset/limit until `total`."""
    items = []
    while True:
        page = client.call("GET", path, query=dict(query or {}, offset=len(items), limit=500))
        items.extend(page["content"])
        if not page["content"] or len(items) >= page["total"]:
            return items


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _when(epoch_ms):
    if epoch_ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000.0))


def _size(count):
    if count < 1024:
        return "%d B" % count
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024.0
        if count < 1024 or unit == "GiB":
            return "%.1f %s" % (count, unit)


def gateway(args, client):
    """`ddi-lite gateway`: GET /rest/v1/gateway (README: Gateway mode) as a few lines."""
    status = client.call("GET", "/gateway")
    if args.json:
        print_json(status)
        return
    upstream, outbox, cache = status["upstream"], status["outbox"], status["cache"]
    print_table([
        ("upstream", "%s (tenant %s, %s)" % (upstream["url"], upstream["tenant"],
                                              upstream["auth"])),
        ("last success", _when(upstream["lastSuccessAt"])),
        ("last error", "%s %s" % (_when(upstream["lastErrorAt"]), upstream["lastError"] or "")),
        ("devices", status["devices"]),
        ("outbox", "%d waiting (%d devices), oldest %s, %d delivered since start" % (
            outbox["depth"], outbox["devices"], _when(outbox["oldestCreatedAt"]),
            outbox["delivered"])),
        ("cache", "%s of %s in %d artifacts; %s from upstream, %s served" % (
            _size(cache["size_bytes"]), _size(cache["max_bytes"]), cache["entries"],
            _size(cache["bytes_from_upstream"]), _size(cache["bytes_served"])))])
    if cache["contents"]:
        print()
        print_table([(entry["sha1"], _size(entry["size"]), entry["state"],
                      "pinned" if entry["pinned"] else "", _when(entry["last_used_ms"]))
                     for entry in cache["contents"]],
                    ("ARTIFACT SHA1", "SIZE", "STATE", "", "LAST USED"))


def _set_label(distribution_set):
    if distribution_set is None:
        return "-"
    return "%s:%s (set %d)" % (distribution_set["name"], distribution_set["version"],
                               distribution_set["id"])


def print_json(document):
    print(json.dumps(document, indent=2, ensure_ascii=False))


def print_table(rows, header=None, indent=""):
    """Plain columns, two spaces apart, no colours; None shows as '-'."""
    lines = ([list(header)] if header else []) + [[_text(cell) for cell in row] for row in rows]
    if not lines:
        return
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    for line in lines:
        print(indent + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def terminal_columns(stream):
    """The width of the terminal `stream` writes to: $COLUMNS or the terminal of stdout (what
    shutil.get_terminal_size asks), else that of `stream` itself, since stdout is often
    redirected while the bar goes to stderr (`SET=$(ddi-lite upload ...)`), else 80."""
    columns = shutil.get_terminal_size((0, 0)).columns
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80


def _duration(seconds):
    """M:SS, or H:MM:SS from an hour on."""
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return "%d:%02d:%02d" % (hours, minutes, seconds)
    return "%d:%02d" % (minutes, seconds)


def _shortened(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal: the label, a bar, the
    percentage, the bytes sent of all, the rate and the time left.

    The line fits the terminal's width, measured at each redraw (a window may be resized),
    leaving the last column free: some terminals wrap as soon as it is written, and every
    redraw would then start a new line. What does not fit is left out, the least useful
    first (see `_line`). The rate is that of the last few seconds, so that the time left
    follows a link that slows down; the final line shows the average and the time taken.
    """

    rate_window_seconds = 5.0
    redraw_seconds = 0.5
    bar_widths = (10, 50)  # narrower is no use, wider only moves the figures away

    def __init__(self, label, total, stream=None, clock=time.monotonic, columns=None):
        """`columns` fixes the width instead of measuring the terminal's (tests do)."""
        self.label = label
        self.total = total
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty()
        self.clock = clock
        self.columns = columns
        self.started = clock()
        self._samples = collections.deque([(self.started, 0)])
        self._drawn = None  # (percent, time) of the line on the screen
        self._drawn_length = 0

    def advance(self, count):
        self.done += count
        now = self.clock()
        self._samples.append((now, self.done))
        # Keep the newest sample at least a window old: the rate spans a whole window.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.rate_window_seconds:
            self._samples.popleft()
        percent = self.done * 100 // self.total
        if self.enabled and (self._drawn is None or percent != self._drawn[0]
                             or now - self._drawn[1] >= self.redraw_seconds):
            self._draw(now, percent)

    def finish(self):
        if self.enabled and self._drawn is not None:
            if self.done >= self.total:
                self._draw(self.clock(), 100)
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now, percent):
        room = (self.columns or terminal_columns(self.stream)) - 1
        line = self._line(now, percent, room)
        # Blank what a longer line before left, but never past the room.
        padding = max(min(self._drawn_length, room) - len(line), 0)
        self.stream.write("\r" + line + " " * padding)
        self.stream.flush()
        self._drawn = (percent, now)
        self._drawn_length = len(line)

    def _rate(self, now):
        """Bytes per second: over the last window, or over all the time once done."""
        since, done_then = (self.started, 0) if self.done >= self.total else self._samples[0]
        if now <= since:
            return None
        return (self.done - done_then) / (now - since)

    def _line(self, now, percent, room):
        rate = self._rate(now)
        speed = "%s/s" % _size(int(rate)) if rate is not None else "-- B/s"
        if self.done >= self.total:
            timing = "in " + _duration(now - self.started)
        elif rate:
            timing = _duration((self.total - self.done) / rate) + " left"
        else:
            timing = "--:-- left"
        share = "%3d%%" % percent
        sizes = "%s / %s" % (_size(self.done), _size(self.total))
        label, short_label = _shortened(self.label, 24), _shortened(self.label, 12)
        # From the richest line to the barest: the first that fits is drawn.
        layouts = (
            (label, True, (share, sizes, speed, timing)),
            (short_label, True, (share, sizes, speed, timing)),
            (short_label, True, (share, speed, timing)),
            (short_label, False, (share, speed, timing)),
            ("", False, (share, speed, timing)),
            ("", False, (share, timing)),
        )
        for label, with_bar, pieces in layouts:
            figures = "  ".join(pieces)
            if with_bar:
                width = min(room - len(label) - len(figures) - 4, self.bar_widths[1])
                if width >= self.bar_widths[0]:
                    filled = percent * width // 100
                    return "%s [%s%s] %s" % (label, "#" * filled, " " * (width - filled),
                                             figures)
            else:
                # The percentage is padded to three digits: one space is enough.
                line = (label + " " + figures) if label else figures
                if len(line) <= room:
                    return line
        return share[:max(room, 0)]


def _part_header(boundary, name, filename=None):
    disposition = 'form-data; name="%s"' % name
    if filename is not None:
        # The `filename` field before this part carries the exact name; this one only has to
        # keep the header intact.
        safe = re.sub(r'["\\\r\n]', "_", filename)
        disposition += '; filename="%s"\r\nContent-Type: application/octet-stream' % safe
    return "--%s\r\nContent-Disposition: %s\r\n\r\n" % (boundary, disposition)


def upload_artifact(client, module_id, path):
    """Stream one file to the module as multipart/form-data, hashing it on the way.

    The SHA-256 goes out as a form field after the file, so the server refuses (and does not
    keep) bytes that arrived different; the answer's hash is compared here as well.
    """
    filename = os.path.basename(path)
    size = os.path.getsize(path)
    boundary = "ddi-lite-" + os.urandom(12).hex()
    head = (_part_header(boundary, "filename") + filename + "\r\n" +
            _part_header(boundary, "file", filename)).encode("utf-8")

    def tail(sha256):
        return ("\r\n" + _part_header(boundary, "sha256sum") + sha256 +
                "\r\n--%s--\r\n" % boundary).encode("ascii")

    sha256 = hashlib.sha256()
    progress = Progress(filename, size)

    def chunks(handle):
        yield head
        remaining = size
        while remaining:
            try:
                chunk = handle.read(min(UPLOAD_CHUNK_BYTES, remaining))
            except OSError as error:
                raise CommandFailed("cannot read %s: %s" % (path, _reason(error)))
            if not chunk:
                raise CommandFailed("%s became shorter while it was uploaded" % path)
            remaining -= len(chunk)
            sha256.update(chunk)
            progress.advance(len(chunk))
            yield chunk
        yield tail(sha256.hexdigest())

    with open(path, "rb") as handle:
        try:
            artifact = client.exchange(
                "POST", "/softwaremodules/%d/artifacts" % module_id, None,
                {"Content-Type": "multipart/form-data; boundary=" + boundary},
                chunks(handle), len(head) + size + len(tail("0" * 64)))
        finally:
            progress.finish()
    stored = artifact.get("hashes", {}).get("sha256")
    if stored != sha256.hexdigest():
        raise CommandFailed("the server stored %s with sha256 %s, but the file's is %s"
                            % (filename, stored, sha256.hexdigest()))
    return artifact


def _rsql_text(text):
    """`text` as one quoted RSQL value, taken literally (no wildcard)."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("*", "\\*")


def targets_list(args, client):
    conditions = [condition for condition in (
        "tag==" + _rsql_text(args.tag) if args.tag is not None else None,
        "(%s)" % args.query if args.query else None) if condition]
    targets = _all_pages(client, "/targets",
                         {"q": ";".join(conditions)} if conditions else None)
    if args.json:
        print_json(targets)
        return
    print_table([(target["controllerId"], target.get("name"), target.get("updateStatus"),
                  _when(target.get("lastControllerRequestAt")), target.get("ipAddress"))
                 for target in targets],
                header=("CONTROLLER ID", "NAME", "STATUS", "LAST POLL", "ADDRESS"))


def targets_add(args, client):
    fields = {"controllerId": args.controller_id, "name": args.name,
              "securityToken": args.token}
    created = client.call("POST", "/targets",
                          [{key: value for key, value in fields.items() if value is not None}])
    if args.json:
        print_json(created[0])
    else:
        print(_text(created[0].get("securityToken")))


def targets_show(args, client):
    path = "/targets/" + _segment(args.controller_id)
    target = client.call("GET", path)
    attributes = client.call("GET", path + "/attributes") or {}
    assigned = client.call("GET", path + "/assignedDS")
    installed = client.call("GET", path + "/installedDS")
    tags = client.call("GET", path + "/tags")
    if args.json:
        print_json({"target": target, "attributes": attributes, "assignedDS": assigned,
                    "installedDS": installed, "tags": tags})
        return
    last_poll = _when(target.get("lastControllerRequestAt"))
    if (target.get("pollStatus") or {}).get("overdue"):
        last_poll += " (overdue)"
    print_table([
        ("controller id", target["controllerId"]),
        ("name", target.get("name")),
        ("description", target.get("description")),
        ("update status", target.get("updateStatus")),
        ("security token", target.get("securityToken")),
        ("address", target.get("address")),
        ("target type", target.get("targetTypeName")),
        ("tags", ", ".join(tag["name"] for tag in tags) or None),
        ("last poll", last_poll),
        ("assigned set", _set_label(assigned)),
        ("installed set", _set_label(installed)),
        ("installed at", _when(target.get("installedAt"))),
        ("attributes", "" if attributes else None),
    ])
    print_table(sorted(attributes.items()), indent="  ")


def targets_delete(args, client):
    client.call("DELETE", "/targets/" + _segment(args.controller_id))
    if not args.json:
        print("target %s deleted" % args.controller_id)


def _check_readable(path):
    try:
        with open(path, "rb"):
            size = os.path.getsize(path)
    except OSError as error:
        raise CommandFailed("cannot read %s: %s" % (path, _reason(error)), 2)
    if size == 0:
        raise CommandFailed("%s is empty; an artifact needs at least one byte" % path, 2)


def upload(args, client):
    for path in args.files:
        _check_readable(path)
    names = [os.path.basename(path) for path in args.files]
    if len(set(names)) != len(names):
        raise CommandFailed("two files have the same name; artifact names must differ", 2)
    set_type = args.set_type or {"os": "os", "application": "app"}.get(args.type)
    if set_type is None:
        raise CommandFailed("a module of type %s needs --set-type" % args.type, 2)
    module = client.call("POST", "/softwaremodules", [
        {"name": args.name, "version": args.version, "type": args.type}])[0]
    try:
        artifacts = [upload_artifact(client, module["id"], path) for path in args.files]
        distribution_set = client.call("POST", "/distributionsets", [{
            "name": args.name, "version": args.version, "type": set_type,
            "modules": [{"id": module["id"]}]}])[0]
    except (CommandFailed, KeyboardInterrupt):
        # Leave nothing half made, so the same command can simply be run again.
        try:
            client.call("DELETE", "/softwaremodules/%d" % module["id"])
        except CommandFailed:
            pass
        raise
    if args.json:
        print_json({"softwareModule": module, "artifacts": artifacts,
                    "distributionSet": distribution_set})
    else:
        print(distribution_set["id"])


def _type_label(document):
    return "%s (%s)" % (document.get("type"), _text(document.get("typeName")))


def _created(document):
    return "%s by %s" % (_when(document.get("createdAt")), _text(document.get("createdBy")))


def _only_marked_deleted(client, collection, item_id):
    """Whether a module or set the server was told to delete is still kept, marked deleted
    (something still refers to it), rather than gone."""
    return client.call("GET", "/" + collection, query={
        "q": "id==%d" % item_id, "soft_deleted_mode": "INCLUDE_SOFT_DELETED",
        "limit": 1})["total"] > 0


def modules_list(args, client):
    modules = _all_pages(client, "/softwaremodules", {"q": args.query} if args.query else None)
    if args.json:
        print_json(modules)
        return
    print_table([(module["id"], module["name"], module["version"], module["type"],
                  module.get("locked"), _when(module.get("createdAt")))
                 for module in modules],
                header=("ID", "NAME", "VERSION", "TYPE", "LOCKED", "CREATED"))


def modules_show(args, client):
    path = "/softwaremodules/%d" % args.id
    module = client.call("GET", path)
    artifacts = client.call("GET", path + "/artifacts")
    # Deleted sets too: a set marked deleted still holds its modules.
    sets = _all_pages(client, "/distributionsets", {
        "q": "module.id==%d" % args.id, "soft_deleted_mode": "INCLUDE_SOFT_DELETED"})
    if args.json:
        print_json({"softwareModule": module, "artifacts": artifacts, "distributionSets": sets})
        return
    set_labels = [_set_label(distribution_set) + (", marked deleted" if distribution_set.get(
        "deleted") else "") for distribution_set in sets] or [None]
    print_table([
        ("id", module["id"]),
        ("name", module["name"]),
        ("version", module["version"]),
        ("type", _type_label(module)),
        ("vendor", module.get("vendor")),
        ("description", module.get("description")),
        ("locked", module.get("locked")),
        ("deleted", module.get("deleted")),
        ("created", _created(module)),
        ("in sets", set_labels[0]),
    ] + [("", label) for label in set_labels[1:]] + [("artifacts", "" if artifacts else None)])
    print_table([(artifact["id"], artifact["providedFilename"], _size(artifact["size"]),
                  artifact.get("hashes", {}).get("sha256")) for artifact in artifacts],
                header=("ID", "FILE", "SIZE", "SHA-256") if artifacts else None, indent="  ")


def _delete(args, client, collection, noun, why_kept):
    """DELETE one module or set, then say whether hawkBit's rules only marked it deleted."""
    client.call("DELETE", "/%s/%d" % (collection, args.id))
    if args.json:
        return
    if _only_marked_deleted(client, collection, args.id):
        print("%s %d marked deleted: %s" % (noun, args.id, why_kept))
    else:
        print("%s %d deleted" % (noun, args.id))


def modules_delete(args, client):
    _delete(args, client, "softwaremodules", "module", "a distribution set still holds it")


def sets_list(args, client):
    sets = _all_pages(client, "/distributionsets", {"q": args.query} if args.query else None)
    if args.json:
        print_json(sets)
        return
    print_table([(distribution_set["id"], distribution_set["name"], distribution_set["version"],
                  distribution_set["type"],
                  ",".join(str(module["id"]) for module in distribution_set["modules"]) or None,
                  distribution_set.get("locked"), distribution_set.get("complete"))
                 for distribution_set in sets],
                header=("ID", "NAME", "VERSION", "TYPE", "MODULES", "LOCKED", "COMPLETE"))


def _targets_count(count):
    return "1 target" if count == 1 else "%d targets" % count


def sets_show(args, client):
    path = "/distributionsets/%d" % args.id
    distribution_set = client.call("GET", path)
    counts = {relation: client.call("GET", path + "/" + relation,
                                    query={"offset": 0, "limit": 1})["total"]
              for relation in ("assignedTargets", "installedTargets")}
    if args.json:
        print_json(dict(distributionSet=distribution_set, **counts))
        return
    print_table([
        ("id", distribution_set["id"]),
        ("name", distribution_set["name"]),
        ("version", distribution_set["version"]),
        ("type", _type_label(distribution_set)),
        ("description", distribution_set.get("description")),
        ("locked", distribution_set.get("locked")),
        ("deleted", distribution_set.get("deleted")),
        ("complete", distribution_set.get("complete")),
        ("valid", distribution_set.get("valid")),
        ("created", _created(distribution_set)),
        ("assigned to", _targets_count(counts["assignedTargets"])),
        ("installed on", _targets_count(counts["installedTargets"])),
        ("modules", "" if distribution_set["modules"] else None),
    ])
    modules = distribution_set["modules"]
    print_table([(module["id"], module["name"], module["version"], module["type"])
                 for module in modules],
                header=("ID", "NAME", "VERSION", "TYPE") if modules else None, indent="  ")


def sets_delete(args, client):
    _delete(args, client, "distributionsets", "set", "actions or targets still refer to it")


def _controller_id_of(assigned_action):
    """The target of an action (of a list, or an assignment result), from its self link."""
    href = assigned_action["_links"]["self"]["href"]
    return urllib.parse.unquote(href.rsplit("/actions/", 1)[0].rsplit("/targets/", 1)[-1])


def assign(args, client):
    if (args.type == "timeforced") != (args.forcetime is not None):
        raise CommandFailed("--forcetime goes with --type timeforced, and only with it", 2)
    # The server skips unknown targets silently; an operator wants to hear about them.
    for controller_id in args.targets:
        client.call("GET", "/targets/" + _segment(controller_id))
    request = []
    for controller_id in args.targets:
        assignment = {"id": controller_id, "type": args.type}
        if args.forcetime is not None:
            assignment["forcetime"] = args.forcetime
        request.append(assignment)
    result = client.call("POST", "/distributionsets/%d/assignedTargets" % args.set, request)
    if args.json:
        print_json(result)
        return
    print("assigned: %d, already assigned: %d" % (result["assigned"], result["alreadyAssigned"]))
    print_table([(_controller_id_of(action), action["id"])
                 for action in result["assignedActions"]], header=("TARGET", "ACTION"))


def actions(args, client):
    if args.action is not None:
        if args.query:
            raise CommandFailed("--query selects actions from a list; ACTION names one", 2)
        action_history(args, client)
        return
    query = {"q": args.query} if args.query else {}
    if args.controller_id is None:
        # The global list gives each action with its set's name at once.
        listed = _all_pages(client, "/actions", dict(query, representation="full"))
    else:
        path = "/targets/%s/actions" % _segment(args.controller_id)
        listed = [client.call("GET", "%s/%d" % (path, action["id"]))
                  for action in _all_pages(client, path, query)]
    history = []
    for action in listed:
        newest = client.call("GET", "/targets/%s/actions/%d/status" % (
            _segment(_controller_id_of(action)), action["id"]),
            query={"offset": 0, "limit": 1, "sort": "id:DESC"})["content"]
        history.append({"action": action, "latestStatus": newest[0] if newest else None})
    if args.json:
        print_json(history)
        return
    of_all_targets = args.controller_id is None
    rows = []
    for entry in history:
        action, latest = entry["action"], entry["latestStatus"] or {}
        rows.append([action["id"]] + ([_controller_id_of(action)] if of_all_targets else []) + [
            action["status"], action["type"], action["forceType"],
            action["_links"].get("distributionset", {}).get("name"),
            (latest.get("messages") or [None])[-1]])
    print_table(rows, header=["ID"] + (["TARGET"] if of_all_targets else []) + [
        "STATUS", "TYPE", "FORCE", "SET", "LAST MESSAGE"])


def _set_link_label(link):
    """An action's distributionset link as `name:version (set ID)`."""
    if link is None:
        return "-"
    return "%s (set %s)" % (link.get("name"), link["href"].rsplit("/", 1)[-1])


def action_history(args, client):
    """One action and every status entry it has, oldest first: the story of an update as
    the server and the device told it, each message on a line of its own."""
    path = "/targets/%s/actions/%d" % (_segment(args.controller_id), args.action)
    action = client.call("GET", path)
    entries = _all_pages(client, path + "/status", {"sort": "id:ASC"})
    if args.json:
        print_json({"action": action, "history": entries})
        return
    force_type = action["forceType"]
    if action.get("forceTime") is not None:
        force_type += ", forced from " + _when(action["forceTime"])
    print_table([
        ("action", action["id"]),
        ("target", args.controller_id),
        ("set", _set_link_label(action["_links"].get("distributionset"))),
        ("status", "%s (%s)" % (action["status"], "open" if action["active"] else "closed")),
        ("type", action["type"]),
        ("force type", force_type),
        ("created", "%s by %s" % (_when(action.get("createdAt")), _text(action.get("createdBy")))),
        ("changed", _when(action.get("lastModifiedAt"))),
        ("last status code", action.get("lastStatusCode")),
    ])
    print("status history, oldest first:")
    rows = []
    for entry in entries:
        messages = entry.get("messages") or [None]
        rows.append((_when(entry.get("reportedAt")), entry["type"], entry.get("code"),
                     messages[0]))
        rows.extend(("", "", "", message) for message in messages[1:])
    print_table(rows, header=("REPORTED AT", "TYPE", "CODE", "MESSAGE"), indent="  ")


def cancel(args, client):
    path = "/targets/%s/actions/%d" % (_segment(args.controller_id), args.action)
    if args.force:
        action = client.call("GET", path)
        # The server force-quits only an action that is already being cancelled.
        if action.get("active") and action.get("status") != "canceling":
            client.call("DELETE", path)
        client.call("DELETE", path, query={"force": "true"})
    else:
        client.call("DELETE", path)
    action = client.call("GET", path)
    if args.json:
        print_json(action)
    else:
        print("action %d of %s: %s" % (action["id"], args.controller_id, action["status"]))


def _config_rows(configs):
    return [(key, configs[key].get("value"), "default" if configs[key].get("global") else "set")
            for key in sorted(configs)]


def config_get(args, client):
    if args.key is None:
        configs = client.call("GET", "/system/configs")
        if args.json:
            print_json(configs)
        else:
            print_table(_config_rows(configs), header=("KEY", "VALUE", "SOURCE"))
        return
    value = client.call("GET", "/system/configs/" + _segment(args.key))
    if args.json:
        print_json(value)
    else:
        print(_text(value.get("value")))


def config_set(args, client):
    try:
        value = json.loads(args.value)
    except ValueError:
        value = args.value
    path = "/system/configs/" + _segment(args.key)
    client.call("PUT", path, {"value": value})
    stored = client.call("GET", path)
    if args.json:
        print_json(stored)
    else:
        print("%s = %s" % (args.key, _text(stored.get("value"))))


# --- tags -------------------------------------------------------------------------------------

def _tag_kind(args):
    """(collection, what its tags go on) for target tags, or distribution set tags (--sets)."""
    return ("/distributionsettags", "set") if args.sets else ("/targettags", "target")


def _counted(count, noun):
    return "%d %s%s" % (count, noun, "" if count == 1 else "s")


def _tag_named(client, args):
    collection, _ = _tag_kind(args)
    found = client.call("GET", collection, query={"q": "name==" + _rsql_text(args.name),
                                                  "limit": 1})["content"]
    if not found:
        raise CommandFailed("no %s tag is named %s" % (
            "distribution set" if args.sets else "target", args.name))
    return found[0]


def _tagged_items(args):
    """The command line's TARGET|SET words as the request body: controller ids, or set ids."""
    if not args.sets:
        return list(args.items)
    try:
        return [int(item) for item in args.items]
    except ValueError:
        raise CommandFailed("distribution sets are named by their ids (numbers), not %s"
                            % " ".join(args.items), 2)


def tags_list(args, client):
    collection, owners = _tag_kind(args)
    tags = _all_pages(client, collection, {"q": args.query} if args.query else None)
    counts = [client.call("GET", "%s/%d/assigned" % (collection, tag["id"]),
                          query={"offset": 0, "limit": 1})["total"] for tag in tags]
    if args.json:
        print_json(tags)
        return
    print_table([(tag["id"], tag["name"], count, tag.get("colour"), tag.get("description"))
                 for tag, count in zip(tags, counts)],
                header=("ID", "NAME", owners.upper() + "S", "COLOUR", "DESCRIPTION"))


def tags_create(args, client):
    collection, _ = _tag_kind(args)
    fields = {"name": args.name, "description": args.description, "colour": args.colour}
    created = client.call("POST", collection, [
        {key: value for key, value in fields.items() if value is not None}])[0]
    if args.json:
        print_json(created)
    else:
        print(created["id"])


def tags_delete(args, client):
    collection, _ = _tag_kind(args)
    tag = _tag_named(client, args)
    client.call("DELETE", "%s/%d" % (collection, tag["id"]))
    if not args.json:
        print("tag %s deleted" % args.name)


def _tags_change(args, client, method, done):
    collection, owners = _tag_kind(args)
    items = _tagged_items(args)
    tag = _tag_named(client, args)
    client.call(method, "%s/%d/assigned" % (collection, tag["id"]), items)
    if args.json:
        print_json(client.call("GET", "%s/%d" % (collection, tag["id"])))
    else:
        print("tag %s %s %s" % (args.name, done, _counted(len(set(items)), owners)))


def tags_assign(args, client):
    _tags_change(args, client, "POST", "put on")


def tags_unassign(args, client):
    _tags_change(args, client, "DELETE", "taken off")

# --- target filters --------------------------------------------------------------------------

def _filter_path(filter_id):
    return "/targetfilters/%d" % filter_id


def _auto_assigned_set(client, target_filter, known):
    """The set a filter auto-assigns (None: none), fetched once per id into `known`."""
    set_id = target_filter.get("autoAssignDistributionSet")
    if set_id is None:
        return None
    if set_id not in known:
        known[set_id] = client.call("GET", "/distributionsets/%d" % set_id)
    return known[set_id]


def _auto_assignment_label(target_filter, distribution_set):
    """`name:version (set N), forced, weight 1000`, or None without an auto-assignment."""
    if distribution_set is None:
        return None
    return "%s, %s, weight %s" % (_set_label(distribution_set),
                                  target_filter.get("autoAssignActionType"),
                                  _text(target_filter.get("autoAssignWeight")))


def filters_list(args, client):
    listed = _all_pages(client, "/targetfilters", {"q": args.query} if args.query else None)
    if args.json:
        print_json(listed)
        return
    known = {}
    print_table([(target_filter["id"], target_filter["name"], target_filter["query"],
                  _auto_assignment_label(target_filter,
                                         _auto_assigned_set(client, target_filter, known)))
                 for target_filter in listed], header=("ID", "NAME", "QUERY", "AUTO-ASSIGNS"))


def filters_show(args, client):
    target_filter = client.call("GET", _filter_path(args.id))
    matching = client.call("GET", "/targets", query={
        "q": target_filter["query"], "offset": 0, "limit": 1})["total"]
    distribution_set = _auto_assigned_set(client, target_filter, {})
    if args.json:
        print_json({"targetFilter": target_filter, "matchingTargets": matching,
                    "autoAssignDistributionSet": distribution_set})
        return
    rows = [
        ("id", target_filter["id"]),
        ("name", target_filter["name"]),
        ("query", target_filter["query"]),
        ("matches", _targets_count(matching) + " now"),
        ("auto-assigns", _auto_assignment_label(target_filter, distribution_set)),
    ]
    if target_filter.get("confirmationRequired") is not None:
        rows.append(("confirmation", "required" if target_filter["confirmationRequired"]
                     else "not required"))
    rows += [("created", _created(target_filter)),
             ("changed", "%s by %s" % (_when(target_filter.get("lastModifiedAt")),
                                       _text(target_filter.get("lastModifiedBy"))))]
    print_table(rows)


def filters_create(args, client):
    target_filter = client.call("POST", "/targetfilters",
                                {"name": args.name, "query": args.query})
    if args.json:
        print_json(target_filter)
    else:
        print(target_filter["id"])


def filters_delete(args, client):
    client.call("DELETE", _filter_path(args.id))
    if not args.json:
        print("target filter %d deleted" % args.id)


def filters_auto_assign(args, client):
    request = {"id": args.set, "type": args.type}
    if args.weight is not None:
        request["weight"] = args.weight
    if args.confirmation_required is not None:
        request["confirmationRequired"] = args.confirmation_required
    target_filter = client.call("POST", _filter_path(args.id) + "/autoAssignDS", request)
    if args.json:
        print_json(target_filter)
        return
    print("target filter %d auto-assigns %s" % (args.id, _auto_assignment_label(
        target_filter, _auto_assigned_set(client, target_filter, {}))))


def filters_no_auto_assign(args, client):
    client.call("DELETE", _filter_path(args.id) + "/autoAssignDS")
    if args.json:
        print_json(client.call("GET", _filter_path(args.id)))
    else:
        print("target filter %d auto-assigns nothing now" % args.id)


def run_operator_command(args, command):
    """Run one operator command, `command(args, client)`; failures are one line on stderr and
    an exit code."""
    url = getattr(args, "url", None) or os.environ.get("DDI_LITE_URL") or \
        "http://localhost:8080"
    user = getattr(args, "user", None) or os.environ.get("DDI_LITE_USER") or "admin"
    password = getattr(args, "password", None)
    if password is None:
        password = os.environ.get("DDI_LITE_PASSWORD")
    args.json = getattr(args, "json", False)
    try:
        client = ManagementClient(url, user, password)
        try:
            # A command may end with its own exit code (`rollouts show --watch` does).
            exit_code = command(args, client)
        finally:
            client.close()
    except CommandFailed as failure:
        print("ddi-lite: %s" % failure, file=sys.stderr)
        return failure.exit_code
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        print("ddi-lite: unexpected answer from %s (%s: %s)" % (url, type(error).__name__, error),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); keep Python from complaining again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return exit_code or 0
