"""client.rollouts: `ddi-lite rollouts ...`, staged rollouts from the operator's command line.

create, list, show (with --watch: a progress bar per group, redrawn until the rollout ends or
stops by itself), and the life-cycle verbs start, pause, resume, approve, deny, stop,
next-group, retry and delete. Like client.commands it only talks to a server's Management API
(/rest/v1/rollouts), so it works from another machine; the argparse definitions are in
client.cli.
"""

import sys
import time

from client.commands import (CommandFailed, _all_pages, _created, _text, _when, print_json,
                             print_table, terminal_columns)

# Where a rollout stops moving without an operator: `show --watch` ends there, with exit
# code 0 for `finished` and WATCH_STOPPED_EXIT for the others, so a script can wait on it.
WATCH_ENDS = ("finished", "paused", "stopped", "approval_denied", "deleted")
WATCH_STOPPED_EXIT = 3
# The per-status counts of a rollout or a group, in the order an operator reads them.
COUNTED_STATUSES = ("finished", "error", "running", "scheduled", "notstarted", "cancelled")
# `start` (and `create --start`) waits this long for a new rollout to leave `creating`.
READY_WAIT_SECONDS = 120
READY_POLL_SECONDS = 0.5


def _path(rollout_id, *rest):
    return "/".join(("/rollouts/%d" % rollout_id,) + rest)


def _condition(threshold):
    return {"condition": "THRESHOLD", "expression": str(threshold)}


def _groups(args):
    """The explicit groups of `--group PERCENT[:QUERY]`, named group-1, group-2, ..."""
    groups = []
    for number, text in enumerate(args.group, 1):
        percent, _, query = text.partition(":")
        try:
            percentage = float(percent)
        except ValueError:
            raise CommandFailed("--group takes PERCENT[:QUERY], e.g. 10 or "
                                "50:attribute.line==2, not %r" % text, 2)
        if not 0 < percentage <= 100:
            raise CommandFailed("a group's percentage is more than 0 and at most 100, not %s"
                                % percent, 2)
        group = {"name": "group-%d" % number,
                 "targetPercentage": int(percentage) if percentage.is_integer() else percentage}
        if query:
            group["targetFilterQuery"] = query
        groups.append(group)
    return groups


def _create_request(args):
    if (args.type == "timeforced") != (args.forcetime is not None):
        raise CommandFailed("--forcetime goes with --type timeforced, and only with it", 2)
    request = {
        "name": args.name,
        "distributionSetId": args.set,
        "targetFilterQuery": args.query,
        "type": args.type,
        "successCondition": _condition(args.success_threshold),
        "successAction": {"action": "NEXTGROUP", "expression": ""},
        "errorCondition": _condition(args.error_threshold),
        "errorAction": {"action": "PAUSE", "expression": ""},
    }
    if args.group:
        request["groups"] = _groups(args)
    else:
        request["amountGroups"] = args.groups
    optional = {"description": args.description, "forcetime": args.forcetime,
                "weight": args.weight, "startAt": args.start_at,
                "confirmationRequired": args.confirmation_required}
    request.update((key, value) for key, value in optional.items() if value is not None)
    return request


def _wait_until_ready(client, rollout_id):
    """The rollout once it has left `creating` (the server splits targets into groups)."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while True:
        rollout = client.call("GET", _path(rollout_id))
        if rollout["status"] != "creating":
            return rollout
        if time.monotonic() >= deadline:
            raise CommandFailed("rollout %d is still being created after %d s"
                                % (rollout_id, READY_WAIT_SECONDS))
        time.sleep(READY_POLL_SECONDS)


def rollouts_create(args, client):
    rollout = client.call("POST", "/rollouts", _create_request(args))
    if args.start:
        # The rollout exists from here on: when it cannot start, its id is still printed, so
        # that a script (ROLLOUT=$(...)) can approve, start or delete it.
        try:
            if _wait_until_ready(client, rollout["id"])["status"] == "waiting_for_approval":
                raise CommandFailed("rollout %d was created but not started: it waits for "
                                    "approval (rollout.approval.enabled); approve it, then "
                                    "start it" % rollout["id"])
            client.call("POST", _path(rollout["id"], "start"))
            rollout = client.call("GET", _path(rollout["id"]))
        except CommandFailed:
            _print_created(args, rollout)
            raise
    _print_created(args, rollout)


def _print_created(args, rollout):
    if args.json:
        print_json(rollout)
    else:
        print(rollout["id"])
    sys.stdout.flush()


def _set_name(rollout):
    link = (rollout.get("_links") or {}).get("distributionset") or {}
    return link.get("name") or "set %s" % _text(rollout.get("distributionSetId"))


def _done(document):
    """`finished/total`, counting errors as done: how far a rollout or group has come."""
    counts = document.get("totalTargetsPerStatus") or {}
    return "%d/%d" % (counts.get("finished", 0) + counts.get("error", 0),
                      document.get("totalTargets") or 0)


def rollouts_list(args, client):
    # Lists are compact unless asked: full ones carry the counts and the set's name.
    query = {"representation": "full"}
    if args.query:
        query["q"] = args.query
    rollouts = _all_pages(client, "/rollouts", query)
    if args.json:
        print_json(rollouts)
        return
    print_table([(rollout["id"], rollout["name"], rollout["status"], _set_name(rollout),
                  rollout.get("totalGroups"), rollout.get("totalTargets"), _done(rollout),
                  (rollout.get("totalTargetsPerStatus") or {}).get("error", 0))
                 for rollout in rollouts],
                header=("ID", "NAME", "STATUS", "SET", "GROUPS", "TARGETS", "DONE", "ERRORS"))


def _counts_text(document):
    counts = document.get("totalTargetsPerStatus") or {}
    return ", ".join("%d %s" % (counts[status], status) for status in COUNTED_STATUSES
                     if counts.get(status))


def group_bar(group, width):
    """`[###x....]`: finished targets as #, failed ones as x, of the group's width."""
    counts = group.get("totalTargetsPerStatus") or {}
    total = group.get("totalTargets") or 0
    if total <= 0:
        return "[" + " " * width + "]"
    failed = counts.get("error", 0) * width // total
    # A group with any error shows at least one x: an operator must see it at a glance.
    if counts.get("error") and not failed:
        failed = 1
    finished = min(counts.get("finished", 0) * width // total, width - failed)
    return "[%s%s%s]" % ("#" * finished, "x" * failed, "." * (width - finished - failed))


def group_lines(groups, columns):
    """One line per group: name, status, bar, share done and the counts, within `columns`
    (the last column left free); on a narrow terminal the counts shrink to done/total."""
    names = max([len(group["name"]) for group in groups] + [5])
    lines = []
    for group in groups:
        counts = group.get("totalTargetsPerStatus") or {}
        total = group.get("totalTargets") or 0
        done = counts.get("finished", 0) + counts.get("error", 0)
        share = "%3d%%" % (done * 100 // total if total else 0)
        head = "%-*s  %-9s " % (names, group["name"], group["status"])
        tails = (" %s  %s" % (share, _counts_text(group) or "no targets"),
                 " %s  %d/%d" % (share, done, total), " " + share)
        for tail in tails:
            width = min(columns - 1 - len(head) - len(tail) - 2, 40)
            if width >= 10:
                break
        lines.append((head + group_bar(group, max(width, 10)) + tail)[:max(columns - 1, 20)])
    return lines


def _counted(count, noun):
    return "%s %s%s" % (_text(count), noun, "" if count == 1 else "s")


def _show_document(client, rollout_id):
    rollout = client.call("GET", _path(rollout_id))
    groups = _all_pages(client, _path(rollout_id, "deploygroups"))
    return rollout, groups


def _describe(rollout, groups, columns):
    """The rollout's fields as a two-column table, then a line per group."""
    rows = [
        ("id", rollout["id"]),
        ("name", rollout["name"]),
        ("description", rollout.get("description")),
        ("status", rollout["status"]),
        ("set", _set_name(rollout)),
        ("targets", "%s in %s" % (_text(rollout.get("totalTargets")),
                                  _counted(rollout.get("totalGroups"), "group"))),
        ("progress", _counts_text(rollout) or None),
        ("type", rollout.get("type")),
        ("start at", _when(rollout.get("startAt")) if rollout.get("startAt") else None),
        ("created", _created(rollout)),
    ]
    if rollout.get("approveDecidedBy"):
        rows.append(("approval", "%s: %s" % (rollout["approveDecidedBy"],
                                             _text(rollout.get("approvalRemark")))))
    return rows, group_lines(groups, columns)


def rollouts_show(args, client):
    if args.watch:
        return _watch(args, client)
    rollout, groups = _show_document(client, args.id)
    if args.json:
        print_json({"rollout": rollout, "groups": groups})
        return
    rows, lines = _describe(rollout, groups, terminal_columns(sys.stdout))
    print_table(rows)
    if lines:
        print("groups:")
        for line in lines:
            print("  " + line)


def _watch(args, client):
    """Redraw the groups' bars every --interval until the rollout reaches one of WATCH_ENDS.
    On a terminal the block is redrawn in place; elsewhere (a log, a pipe) a new block is
    printed only when something changed, so the output stays readable."""
    on_terminal = sys.stdout.isatty() and not args.json
    drawn_lines = 0
    last = None
    while True:
        rollout, groups = _show_document(client, args.id)
        if args.json:
            snapshot = {"rollout": rollout, "groups": groups}
            if snapshot != last:
                print_json(snapshot)
                sys.stdout.flush()
            last = snapshot
        else:
            header = "rollout %d %s: %s, %s done  (%s)" % (
                rollout["id"], rollout["name"], rollout["status"], _done(rollout),
                time.strftime("%H:%M:%S"))
            block = [header] + ["  " + line for line in
                                group_lines(groups, terminal_columns(sys.stdout) - 2)]
            if on_terminal:
                if drawn_lines:
                    sys.stdout.write("\x1b[%dA" % drawn_lines)
                sys.stdout.write("".join("\x1b[2K" + line + "\n" for line in block))
                drawn_lines = len(block)
            elif block[1:] != last or (last is None):
                print("\n".join(block))
                last = block[1:]
            sys.stdout.flush()
        if rollout["status"] in WATCH_ENDS:
            return 0 if rollout["status"] == "finished" else WATCH_STOPPED_EXIT
        time.sleep(args.interval)


def _verb(args, client, verb, done, query=None):
    client.call("POST", _path(args.id, verb), query=query)
    if args.json:
        print_json(client.call("GET", _path(args.id)))
    else:
        print("rollout %d %s" % (args.id, done))


def rollouts_start(args, client):
    # A rollout just created is still being split into groups: wait for it, as scripts do.
    _wait_until_ready(client, args.id)
    _verb(args, client, "start", "started")


def rollouts_pause(args, client):
    _verb(args, client, "pause", "paused")


def rollouts_resume(args, client):
    _verb(args, client, "resume", "resumed")


def rollouts_stop(args, client):
    _verb(args, client, "stop", "stopped: its scheduled actions are cancelled")


def rollouts_next_group(args, client):
    _verb(args, client, "triggerNextGroup", "started its next group")


def rollouts_approve(args, client):
    _verb(args, client, "approve", "approved",
          {"remark": args.remark} if args.remark else None)


def rollouts_deny(args, client):
    _verb(args, client, "deny", "denied", {"remark": args.remark} if args.remark else None)


def rollouts_retry(args, client):
    rollout = client.call("POST", _path(args.id, "retry"))
    if args.json:
        print_json(rollout)
    else:
        print(rollout["id"])


def rollouts_delete(args, client):
    client.call("DELETE", _path(args.id))
    if args.json:
        return
    try:
        kept = client.call("GET", _path(args.id)).get("deleted")
    except CommandFailed:
        kept = False
    print("rollout %d %s" % (args.id, "marked deleted (its actions stay)" if kept
                             else "deleted"))
