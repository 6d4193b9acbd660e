"""The operator command line (`ddi-lite targets|upload|assign|actions|cancel|modules|sets|
config|filters|rollouts`; rollouts at work: test_cli_rollouts.py), run as an operator runs it: a separate process talking to a real ddi-lite
server process over HTTP; and its --help, built from client.cli alone.

One server serves the whole module; every test uses its own target and set names. Setup that
is not under test goes straight to the Management API with urllib.
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import live
from client import cli as cli_parser


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    server = live.DdiLite(tmp_path_factory.mktemp("cli"))
    try:
        yield server.url
    finally:
        server.stop()


def cli(url, *words, password="admin"):
    """`ddi-lite --url URL WORDS...` with DDI_LITE_PASSWORD set (None: unset), no terminal."""
    extra = {} if password is None else {"DDI_LITE_PASSWORD": password}
    result = subprocess.run([sys.executable, "-m", "ddi_lite", "--url", url] + list(words),
                            env=live.clean_environment(**extra), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=30)
    assert "Traceback" not in result.stderr
    return result


def deployment(url, controller_id, name):
    """A target with token `token-<id>`, a set with one empty os module, assigned: the
    action id."""
    live.api(url, "POST", "/targets", [{"controllerId": controller_id,
                                   "securityToken": "token-" + controller_id}])
    module = live.api(url, "POST", "/softwaremodules",
                 [{"name": name, "version": "1.0", "type": "os"}])[0]
    distribution_set = live.api(url, "POST", "/distributionsets", [
        {"name": name, "version": "1.0", "type": "os", "modules": [{"id": module["id"]}]}])[0]
    result = live.api(url, "POST", "/distributionsets/%d/assignedTargets" % distribution_set["id"],
                 [{"id": controller_id}])
    return result["assignedActions"][0]["id"]


def table_row(output, first_cell):
    """The cells of the table line that starts with `first_cell`."""
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError("no line for %s in:\n%s" % (first_cell, output))


def test_targets_add_prints_the_token_and_list_and_show_display_the_target(url):
    added = cli(url, "targets", "add", "cli-a", "--name", "bench-a", "--token", "tok-a")
    assert (added.returncode, added.stdout) == (0, "tok-a\n")

    listed = cli(url, "targets", "list", "--query", "controllerId==cli-*")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split()[:3] == ["CONTROLLER", "ID", "NAME"]
    assert table_row(listed.stdout, "cli-a")[:3] == ["cli-a", "bench-a", "unknown"]

    shown = cli(url, "targets", "show", "cli-a")
    assert shown.returncode == 0
    assert table_row(shown.stdout, "name") == ["name", "bench-a"]
    assert table_row(shown.stdout, "security") == ["security", "token", "tok-a"]
    assert table_row(shown.stdout, "assigned") == ["assigned", "set", "-"]


def test_targets_list_pages_through_more_targets_than_one_page(url):
    live.api(url, "POST", "/targets", [{"controllerId": "page-%03d" % n} for n in range(501)])
    listed = cli(url, "--json", "targets", "list", "--query", "controllerId==page-*")
    assert listed.returncode == 0
    targets = json.loads(listed.stdout)
    assert sorted(target["controllerId"] for target in targets) == \
        ["page-%03d" % n for n in range(501)]


def test_targets_delete_removes_the_target_and_show_then_reports_the_servers_message(url):
    live.api(url, "POST", "/targets", [{"controllerId": "cli-gone"}])
    deleted = cli(url, "targets", "delete", "cli-gone")
    assert (deleted.returncode, deleted.stdout) == (0, "target cli-gone deleted\n")

    shown = cli(url, "targets", "show", "cli-gone")
    assert shown.returncode == 1
    assert shown.stderr == "ddi-lite: Target with given identifier {cli-gone} does not exist.\n"


def test_upload_creates_one_module_with_every_file_and_prints_the_set_id(url, tmp_path):
    first, second = tmp_path / "rootfs.img", tmp_path / "notes.txt"
    first.write_bytes(os.urandom(300 * 1024))
    second.write_bytes(b"release notes\n")
    uploaded = cli(url, "upload", str(first), str(second), "--name", "cli-fw",
                   "--version", "2.0")
    assert uploaded.returncode == 0, uploaded.stderr
    set_id = int(uploaded.stdout)

    distribution_set = live.api(url, "GET", "/distributionsets/%d" % set_id)
    assert (distribution_set["name"], distribution_set["version"],
            distribution_set["type"]) == ("cli-fw", "2.0", "os")
    [module] = distribution_set["modules"]
    assert module["type"] == "os"
    artifacts = live.api(url, "GET", "/softwaremodules/%d/artifacts" % module["id"])
    assert {(a["providedFilename"], a["size"], a["hashes"]["sha256"]) for a in artifacts} == {
        ("rootfs.img", 300 * 1024, hashlib.sha256(first.read_bytes()).hexdigest()),
        ("notes.txt", 14, hashlib.sha256(b"release notes\n").hexdigest())}


def test_upload_json_prints_the_module_its_artifacts_and_the_set(url, tmp_path):
    app = tmp_path / "app.tar"
    app.write_bytes(b"app bytes")
    uploaded = cli(url, "upload", str(app), "--name", "cli-app", "--version", "1",
                   "--type", "application", "--json")
    assert uploaded.returncode == 0, uploaded.stderr
    document = json.loads(uploaded.stdout)
    assert document["softwareModule"]["type"] == "application"
    assert [a["providedFilename"] for a in document["artifacts"]] == ["app.tar"]
    assert document["distributionSet"]["type"] == "app"
    assert document["distributionSet"]["modules"][0]["id"] == document["softwareModule"]["id"]


def test_upload_of_a_missing_file_is_a_usage_error_and_creates_nothing(url, tmp_path):
    present = tmp_path / "present.bin"
    present.write_bytes(b"x")
    uploaded = cli(url, "upload", str(present), str(tmp_path / "missing.bin"),
                   "--name", "cli-missing", "--version", "1")
    assert uploaded.returncode == 2
    assert uploaded.stderr == "ddi-lite: cannot read %s: No such file or directory\n" \
        % (tmp_path / "missing.bin")
    assert live.api(url, "GET", "/softwaremodules?q=name==cli-missing")["total"] == 0


def test_upload_refused_by_the_server_leaves_no_module_behind(url, tmp_path):
    image = tmp_path / "image.bin"
    image.write_bytes(b"image")
    uploaded = cli(url, "upload", str(image), "--name", "cli-rollback", "--version", "1",
                   "--set-type", "no-such-type")
    assert uploaded.returncode == 1
    assert "no-such-type" in uploaded.stderr
    assert live.api(url, "GET", "/softwaremodules?q=name==cli-rollback")["total"] == 0


def test_assign_then_actions_show_the_running_action_that_the_device_is_offered(url):
    live.api(url, "POST", "/targets", [{"controllerId": "cli-dev", "securityToken": "tok-dev"}])
    module = live.api(url, "POST", "/softwaremodules",
                 [{"name": "cli-assign", "version": "3.1", "type": "os"}])[0]
    set_id = live.api(url, "POST", "/distributionsets", [
        {"name": "cli-assign", "version": "3.1", "type": "os",
         "modules": [{"id": module["id"]}]}])[0]["id"]

    assigned = cli(url, "assign", str(set_id), "cli-dev", "--type", "soft")
    assert assigned.returncode == 0, assigned.stderr
    assert assigned.stdout.splitlines()[0] == "assigned: 1, already assigned: 0"
    action_id = int(table_row(assigned.stdout, "cli-dev")[1])

    listed = cli(url, "actions", "cli-dev")
    assert listed.returncode == 0
    assert table_row(listed.stdout, str(action_id))[:6] == [
        str(action_id), "running", "update", "soft", "cli-assign:3.1", "Assignment"]

    history = json.loads(cli(url, "actions", "cli-dev", "--json").stdout)
    assert [entry["action"]["id"] for entry in history] == [action_id]
    assert history[0]["latestStatus"]["type"] == "running"

    poll = urllib.request.Request(url + "/DEFAULT/controller/v1/cli-dev",
                                  headers={"Authorization": "TargetToken tok-dev"})
    with urllib.request.urlopen(poll, timeout=10) as response:
        links = json.load(response)["_links"]
    assert "/deploymentBase/%d" % action_id in links["deploymentBase"]["href"]


def feedback(url, controller_id, action_id, execution, finished, details, code=None):
    """Deployment feedback as the device `controller_id` (token `token-<id>`) sends it."""
    status = {"execution": execution, "result": {"finished": finished}, "details": details}
    if code is not None:
        status["code"] = code
    request = urllib.request.Request(
        url + "/DEFAULT/controller/v1/%s/deploymentBase/%d/feedback" % (controller_id, action_id),
        data=json.dumps({"id": str(action_id), "status": status}).encode("utf-8"),
        headers={"Authorization": "TargetToken token-" + controller_id,
                 "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_actions_with_an_action_id_show_its_whole_history_oldest_first(url):
    action_id = deployment(url, "cli-story", "cli-story-set")
    feedback(url, "cli-story", action_id, "proceeding", "none",
             ["Download complete.", "File checksum OK."])
    feedback(url, "cli-story", action_id, "closed", "failure", ["Installation failed."], code=17)

    shown = cli(url, "actions", "cli-story", str(action_id))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert table_row(shown.stdout, "status") == ["status", "error", "(closed)"]
    set_href = live.api(url, "GET", "/targets/cli-story/actions/%d" % action_id)[
        "_links"]["distributionset"]["href"]
    assert table_row(shown.stdout, "set") == [
        "set", "cli-story-set:1.0", "(set", set_href.rsplit("/", 1)[1] + ")"]
    assert table_row(shown.stdout, "last") == ["last", "status", "code", "17"]
    history = lines[lines.index("status history, oldest first:") + 1:]
    assert history[0].split() == ["REPORTED", "AT", "TYPE", "CODE", "MESSAGE"]
    types_and_messages = [line.split(None, 4)[2:] if line[2].isdigit() else [line.strip()]
                          for line in history[1:]]
    assert types_and_messages[0][:2] == ["running", "-"]
    assert types_and_messages[0][2].startswith("Assignment initiated by user")
    assert types_and_messages[1:] == [
        ["running", "-", "Download complete."],
        ["File checksum OK."],
        ["error", "17", "Installation failed."],
        ["Device reported status code: 17"]]

    document = json.loads(cli(url, "actions", "cli-story", str(action_id), "--json").stdout)
    assert document["action"]["id"] == action_id
    entries = document["history"]
    assert [entry["type"] for entry in entries] == ["running", "running", "error"]
    assert [entry["id"] for entry in entries] == sorted(entry["id"] for entry in entries)


def test_actions_of_an_action_of_another_target_is_not_found(url):
    action_id = deployment(url, "cli-mine", "cli-mine-set")
    live.api(url, "POST", "/targets", [{"controllerId": "cli-other"}])
    shown = cli(url, "actions", "cli-other", str(action_id))
    assert shown.returncode == 1
    assert shown.stderr.startswith("ddi-lite: not found: GET ")


def test_assign_to_an_unknown_target_assigns_nothing(url):
    action_id = deployment(url, "cli-known", "cli-unknown-set")
    set_href = live.api(url, "GET", "/targets/cli-known/actions/%d" % action_id)[
        "_links"]["distributionset"]["href"]
    assigned = cli(url, "assign", set_href.rsplit("/", 1)[1], "cli-nobody")
    assert assigned.returncode == 1
    assert assigned.stderr == \
        "ddi-lite: Target with given identifier {cli-nobody} does not exist.\n"


def test_actions_query_lists_matching_actions_of_every_target_with_the_target(url):
    failed = deployment(url, "cli-q-1", "cli-q-set-1")
    feedback(url, "cli-q-1", failed, "closed", "failure", ["Disk full."])
    running = deployment(url, "cli-q-2", "cli-q-set-2")

    listed = cli(url, "actions", "--query", "target.controllerId==cli-q-*")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == [
        "ID", "TARGET", "STATUS", "TYPE", "FORCE", "SET", "LAST", "MESSAGE"]
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == \
        [str(running), str(failed)]
    assert table_row(listed.stdout, str(failed)) == [str(failed), "cli-q-1", "error", "update",
                                                     "forced", "cli-q-set-1:1.0", "Disk", "full."]
    assert table_row(listed.stdout, str(running))[:6] == [
        str(running), "cli-q-2", "running", "update", "forced", "cli-q-set-2:1.0"]

    errors = cli(url, "--json", "actions", "--query",
                 "target.controllerId==cli-q-*;status==error")
    assert errors.returncode == 0, errors.stderr
    [entry] = json.loads(errors.stdout)
    assert (entry["action"]["id"], entry["latestStatus"]["messages"]) == (failed, ["Disk full."])

    of_one_target = cli(url, "actions", "cli-q-2", "--query", "status==error")
    assert of_one_target.returncode == 0, of_one_target.stderr
    assert of_one_target.stdout.split() == ["ID", "STATUS", "TYPE", "FORCE", "SET", "LAST",
                                            "MESSAGE"]


def test_actions_query_with_an_unknown_field_reports_the_servers_message(url):
    result = cli(url, "actions", "--query", "colour==red")
    assert result.returncode == 1
    assert result.stderr.startswith("ddi-lite: refused (HTTP 400): The field 'colour' is not ")


def test_actions_with_both_query_and_action_is_a_usage_error(url):
    result = cli(url, "actions", "cli-dev", "1", "--query", "status==error")
    assert result.returncode == 2
    assert "--query" in result.stderr


def test_the_query_fields_the_command_line_lists_are_those_the_server_accepts():
    from storage import query, transitions
    for collection, listed in (("targets", cli_parser.TARGET_QUERY_FIELDS),
                               ("actions", cli_parser.ACTION_QUERY_FIELDS),
                               ("softwaremodules", cli_parser.MODULE_QUERY_FIELDS),
                               ("distributionsets", cli_parser.SET_QUERY_FIELDS),
                               ("targettags", cli_parser.TAG_QUERY_FIELDS),
                               ("distributionsettags", cli_parser.TAG_QUERY_FIELDS),
                               ("targetfilters", cli_parser.FILTER_QUERY_FIELDS),
                               ("rollouts", cli_parser.ROLLOUT_QUERY_FIELDS)):
        server = query.COLLECTIONS[collection]
        accepted = set(server.fields) | {"%s.<key>" % name for name in server.maps}
        assert len(set(listed)) == len(listed)
        assert {name.lower() for name in listed} == accepted, collection
        assert set(server.field_names()) <= set(listed), collection  # spelt alike, too
    assert {status.upper() for status in cli_parser.ACTION_STATUSES} == \
        set(transitions.ACTION_STATUSES)


OPERATOR_COMMANDS = [
    "targets", "targets list", "targets add", "targets show", "targets delete", "upload",
    "assign", "actions", "cancel", "modules", "modules list", "modules show", "modules delete",
    "sets", "sets list", "sets show", "sets delete", "config", "config get", "config set",
    "tags", "tags list", "tags create", "tags delete", "tags assign", "tags unassign",
    "filters", "filters list", "filters show", "filters create", "filters delete",
    "filters auto-assign", "filters no-auto-assign", "rollouts", "rollouts create",
    "rollouts list", "rollouts show", "rollouts start", "rollouts pause", "rollouts resume",
    "rollouts stop", "rollouts next-group", "rollouts retry", "rollouts delete",
    "rollouts approve", "rollouts deny"]


def help_of(words, capsys):
    """`ddi-lite WORDS --help` as client.cli defines it (without the server's own parser)."""
    parser = argparse.ArgumentParser(prog="ddi-lite")
    cli_parser.add_commands(parser.add_subparsers())
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(words.split() + ["--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("words", OPERATOR_COMMANDS + ["simulate"])
def test_help_shows_examples_and_the_environment_variables(words, capsys):
    text = help_of(words, capsys)
    examples = text[text.index("\nexamples:\n"):]
    assert re.search(r"^  (\w+=\$\()?ddi-lite %s\b" % words.split()[0], examples, re.M)
    variables = ["DDI_LITE_USER", "DDI_LITE_PASSWORD"]
    if words != "simulate":
        variables.append("DDI_LITE_URL")
    for name in variables:
        assert re.search(r"^  %s  " % name, examples, re.M), name


@pytest.mark.parametrize("words, fields", [
    ("targets list", cli_parser.TARGET_QUERY_FIELDS),
    ("actions", cli_parser.ACTION_QUERY_FIELDS),
    ("modules list", cli_parser.MODULE_QUERY_FIELDS),
    ("sets list", cli_parser.SET_QUERY_FIELDS),
    ("tags list", cli_parser.TAG_QUERY_FIELDS),
    ("filters list", cli_parser.FILTER_QUERY_FIELDS),
    ("filters create", cli_parser.TARGET_QUERY_FIELDS),
    ("rollouts list", cli_parser.ROLLOUT_QUERY_FIELDS),
    ("rollouts create", cli_parser.TARGET_QUERY_FIELDS)])
def test_help_of_a_command_with_query_lists_the_query_fields(words, fields, capsys):
    assert set(fields) <= set(re.findall(r"[\w.<>]+", help_of(words, capsys)))


def test_every_query_in_the_help_examples_is_one_the_server_accepts(url, capsys):
    examples = [shlex.split(line) for words in OPERATOR_COMMANDS
                for line in help_of(words, capsys).splitlines()
                if line.startswith("  ddi-lite ") and "--query" in line]
    assert len(examples) >= 8
    for example in examples:
        result = cli(url, *example[1:])
        assert result.returncode == 0, (example, result.stderr)


def test_tags_create_assign_and_targets_list_by_tag(url):
    live.api(url, "POST", "/targets", [{"controllerId": "tag-%d" % n} for n in (1, 2, 3)])
    created = cli(url, "tags", "create", "line 3", "--description", "production line 3",
                  "--colour", "#ff0000")
    assert created.returncode == 0, created.stderr
    tag_id = int(created.stdout)
    assert live.api(url, "GET", "/targettags/%d" % tag_id)["colour"] == "#ff0000"

    assigned = cli(url, "tags", "assign", "line 3", "tag-1", "tag-3")
    assert (assigned.returncode, assigned.stdout) == (0, "tag line 3 put on 2 targets\n")
    listed = cli(url, "tags", "list", "--query", "name==line*")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["ID", "NAME", "TARGETS", "COLOUR",
                                                     "DESCRIPTION"]
    assert table_row(listed.stdout, str(tag_id))[1:5] == ["line", "3", "2", "#ff0000"]

    by_tag = cli(url, "targets", "list", "--tag", "line 3")
    assert by_tag.returncode == 0, by_tag.stderr
    assert [line.split()[0] for line in by_tag.stdout.splitlines()[1:]] == ["tag-1", "tag-3"]
    narrowed = cli(url, "--json", "targets", "list", "--tag", "line 3", "--query",
                   "controllerId==tag-3,controllerId==tag-2")
    assert [t["controllerId"] for t in json.loads(narrowed.stdout)] == ["tag-3"]

    unassigned = cli(url, "tags", "unassign", "line 3", "tag-1")
    assert (unassigned.returncode, unassigned.stdout) == (0, "tag line 3 taken off 1 target\n")
    assert [t["controllerId"] for t in live.api(
        url, "GET", "/targettags/%d/assigned" % tag_id)["content"]] == ["tag-3"]


def test_targets_list_by_a_tag_name_with_a_wildcard_takes_it_literally(url):
    live.api(url, "POST", "/targets", [{"controllerId": "star-1"}, {"controllerId": "star-2"}])
    tags = live.api(url, "POST", "/targettags", [{"name": 'st*r "1"'}, {"name": "star"}])
    live.api(url, "POST", "/targettags/%d/assigned" % tags[0]["id"], ["star-1"])
    live.api(url, "POST", "/targettags/%d/assigned" % tags[1]["id"], ["star-2"])
    listed = cli(url, "--json", "targets", "list", "--tag", 'st*r "1"')
    assert listed.returncode == 0, listed.stderr
    assert [t["controllerId"] for t in json.loads(listed.stdout)] == ["star-1"]


def test_tags_assign_of_an_unknown_target_tags_nothing_and_says_which(url):
    live.api(url, "POST", "/targets", [{"controllerId": "tagged-1"}])
    tag_id = int(cli(url, "tags", "create", "strict").stdout)
    result = cli(url, "tags", "assign", "strict", "tagged-1", "ghost-7")
    assert result.returncode == 1
    assert result.stderr == \
        "ddi-lite: Target with given identifier {[ghost-7]} does not exist.\n"
    assert live.api(url, "GET", "/targettags/%d/assigned" % tag_id)["total"] == 0


def test_tags_of_an_unknown_name_and_a_duplicate_name_are_refused(url):
    result = cli(url, "tags", "delete", "never-made")
    assert (result.returncode, result.stderr) == (1, "ddi-lite: no target tag is named "
                                                     "never-made\n")
    cli(url, "tags", "create", "twice")
    result = cli(url, "tags", "create", "twice")
    assert result.returncode == 1
    assert result.stderr.startswith("ddi-lite: refused (HTTP 409): ")


def test_set_tags_with_the_sets_flag(url):
    module = live.api(url, "POST", "/softwaremodules",
                      [{"name": "tagged-fw", "version": "1.0", "type": "os"}])[0]
    sets = live.api(url, "POST", "/distributionsets", [
        {"name": "tagged-set", "version": str(n), "type": "os",
         "modules": [{"id": module["id"]}]} for n in (1, 2)])
    tag_id = int(cli(url, "tags", "create", "stable", "--sets").stdout)
    assert live.api(url, "GET", "/distributionsettags/%d" % tag_id)["name"] == "stable"
    assigned = cli(url, "tags", "assign", "stable", str(sets[0]["id"]), str(sets[1]["id"]),
                   "--sets")
    assert (assigned.returncode, assigned.stdout) == (0, "tag stable put on 2 sets\n")
    listed = cli(url, "tags", "list", "--sets", "--query", "name==stable")
    assert table_row(listed.stdout, str(tag_id))[1:3] == ["stable", "2"]
    found = live.api(url, "GET", "/distributionsets?q=tag%3D%3Dstable")["content"]
    assert sorted(s["id"] for s in found) == sorted(s["id"] for s in sets)
    not_a_number = cli(url, "tags", "assign", "stable", "tagged-set", "--sets")
    assert not_a_number.returncode == 2
    assert "ids" in not_a_number.stderr
    assert cli(url, "tags", "delete", "stable", "--sets").stdout == "tag stable deleted\n"
    assert live.api(url, "GET", "/distributionsettags?q=name%3D%3Dstable")["total"] == 0


def test_targets_show_names_the_target_type_and_the_tags(url):
    target_type = live.api(url, "POST", "/targettypes", [{"name": "gateway"}])[0]
    live.api(url, "POST", "/targets", [{"controllerId": "typed-1",
                                        "targetType": target_type["id"]}])
    tags = live.api(url, "POST", "/targettags", [{"name": "north"}, {"name": "south"}])
    for tag in tags:
        live.api(url, "POST", "/targettags/%d/assigned" % tag["id"], ["typed-1"])
    shown = cli(url, "targets", "show", "typed-1")
    assert shown.returncode == 0, shown.stderr
    assert table_row(shown.stdout, "target") == ["target", "type", "gateway"]
    assert table_row(shown.stdout, "tags") == ["tags", "north,", "south"]
    document = json.loads(cli(url, "--json", "targets", "show", "typed-1").stdout)
    assert document["target"]["targetTypeName"] == "gateway"
    assert [tag["name"] for tag in document["tags"]] == ["north", "south"]


def test_cancel_asks_the_device_to_cancel(url):
    action_id = deployment(url, "cli-cancel", "cli-cancel-set")
    canceled = cli(url, "cancel", "cli-cancel", str(action_id))
    assert canceled.returncode == 0, canceled.stderr
    assert canceled.stdout == "action %d of cli-cancel: canceling\n" % action_id
    action = live.api(url, "GET", "/targets/cli-cancel/actions/%d" % action_id)
    assert (action["status"], action["active"]) == ("canceling", True)


def test_cancel_force_closes_a_running_action_at_once(url):
    action_id = deployment(url, "cli-force", "cli-force-set")
    canceled = cli(url, "cancel", "cli-force", str(action_id), "--force", "--json")
    assert canceled.returncode == 0, canceled.stderr
    action = json.loads(canceled.stdout)
    assert (action["id"], action["status"], action["active"]) == (action_id, "canceled", False)


def test_modules_and_sets_list_show_and_delete_what_nothing_refers_to(url, tmp_path):
    image = tmp_path / "image.bin"
    image.write_bytes(b"image bytes")
    set_id = int(cli(url, "upload", str(image), "--name", "cli-lone", "--version", "1").stdout)
    module_id = live.api(url, "GET", "/distributionsets/%d" % set_id)["modules"][0]["id"]

    sets = cli(url, "sets", "list", "--query", "name==cli-lone")
    assert sets.returncode == 0, sets.stderr
    assert sets.stdout.splitlines()[0].split() == [
        "ID", "NAME", "VERSION", "TYPE", "MODULES", "LOCKED", "COMPLETE"]
    assert table_row(sets.stdout, str(set_id)) == [
        str(set_id), "cli-lone", "1", "os", str(module_id), "false", "true"]
    shown = cli(url, "sets", "show", str(set_id))
    assert table_row(shown.stdout, "assigned") == ["assigned", "to", "0", "targets"]
    assert table_row(shown.stdout, str(module_id)) == [str(module_id), "cli-lone", "1", "os"]

    deleted = cli(url, "sets", "delete", str(set_id))
    assert (deleted.returncode, deleted.stdout) == (0, "set %d deleted\n" % set_id)

    modules = cli(url, "modules", "list", "--query", "name==cli-lone")
    assert modules.stdout.splitlines()[0].split() == [
        "ID", "NAME", "VERSION", "TYPE", "LOCKED", "CREATED"]
    assert table_row(modules.stdout, str(module_id))[:5] == [
        str(module_id), "cli-lone", "1", "os", "false"]
    shown = cli(url, "modules", "show", str(module_id))
    assert table_row(shown.stdout, "in") == ["in", "sets", "-"]
    [artifact] = live.api(url, "GET", "/softwaremodules/%d/artifacts" % module_id)
    assert table_row(shown.stdout, str(artifact["id"]))[1:] == [
        "image.bin", "11", "B", hashlib.sha256(b"image bytes").hexdigest()]

    deleted = cli(url, "modules", "delete", str(module_id))
    assert (deleted.returncode, deleted.stdout) == (0, "module %d deleted\n" % module_id)
    assert live.api(url, "GET", "/softwaremodules?q=name==cli-lone&soft_deleted_mode="
                    "INCLUDE_SOFT_DELETED")["total"] == 0


def test_an_assigned_module_is_refused_until_its_set_is_deleted_and_both_stay_marked(url):
    action_id = deployment(url, "cli-held", "cli-held-set")
    set_id = int(live.api(url, "GET", "/targets/cli-held/actions/%d" % action_id)[
        "_links"]["distributionset"]["href"].rsplit("/", 1)[1])
    module_id = live.api(url, "GET", "/distributionsets/%d" % set_id)["modules"][0]["id"]
    shown = cli(url, "sets", "show", str(set_id))
    assert table_row(shown.stdout, "assigned") == ["assigned", "to", "1", "target"]

    refused = cli(url, "modules", "delete", str(module_id))
    assert refused.returncode == 1
    assert refused.stderr == "ddi-lite: refused (HTTP 423): Software module %d belongs to a " \
        "locked distribution set.\n" % module_id

    deleted = cli(url, "sets", "delete", str(set_id))
    assert (deleted.returncode, deleted.stdout) == (
        0, "set %d marked deleted: actions or targets still refer to it\n" % set_id)
    assert cli(url, "sets", "list", "--query", "name==cli-held-set").stdout.count("\n") == 1
    assert table_row(cli(url, "sets", "show", str(set_id)).stdout, "deleted") == \
        ["deleted", "true"]
    shown = cli(url, "modules", "show", str(module_id))
    assert table_row(shown.stdout, "in") == [
        "in", "sets", "cli-held-set:1.0", "(set", "%d)," % set_id, "marked", "deleted"]

    deleted = cli(url, "modules", "delete", str(module_id))
    assert (deleted.returncode, deleted.stdout) == (
        0, "module %d marked deleted: a distribution set still holds it\n" % module_id)


def test_modules_show_of_an_unknown_module_reports_the_servers_message(url):
    shown = cli(url, "modules", "show", "99999")
    assert shown.returncode == 1
    assert shown.stderr == \
        "ddi-lite: SoftwareModule with given identifier {99999} does not exist.\n"


def test_config_set_then_get_reads_the_value_back(url):
    changed = cli(url, "config", "set", "pollingTime", "00:01:00")
    assert (changed.returncode, changed.stdout) == (0, "pollingTime = 00:01:00\n")
    read = cli(url, "config", "get", "pollingTime")
    assert (read.returncode, read.stdout) == (0, "00:01:00\n")
    everything = cli(url, "config", "get")
    assert table_row(everything.stdout, "pollingTime") == ["pollingTime", "00:01:00", "set"]


def test_config_set_sends_json_values_as_json(url):
    changed = cli(url, "config", "set", "authentication.gatewaytoken.enabled", "true", "--json")
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["value"] is True


def test_a_wrong_password_is_a_refused_login(url):
    result = cli(url, "targets", "list", password="not-the-password")
    assert result.returncode == 1
    assert result.stderr == "ddi-lite: login refused for user admin at %s\n" % url


def test_no_password_and_no_terminal_is_a_usage_error(url):
    result = cli(url, "targets", "list", password=None)
    assert result.returncode == 2
    assert "DDI_LITE_PASSWORD" in result.stderr


def test_an_unreachable_server_is_reported_as_such():
    closed = "http://127.0.0.1:%d" % live.free_port()
    result = cli(closed, "targets", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("ddi-lite: cannot reach ddi-lite at %s: " % closed)


# --- filters: target filters and their auto-assignment (every query names flt-* targets only,
# so that the server's auto-assignment leaves the other tests' targets alone) -----------------

def a_set(url, name):
    module = live.api(url, "POST", "/softwaremodules",
                      [{"name": name, "version": "1.0", "type": "os"}])[0]
    return live.api(url, "POST", "/distributionsets", [
        {"name": name, "version": "1.0", "type": "os", "modules": [{"id": module["id"]}]}])[0]


def test_filters_create_list_show_and_delete(url):
    live.api(url, "POST", "/targets", [{"controllerId": "flt-a-%d" % n} for n in range(3)])
    created = cli(url, "filters", "create", "flt-a", "controllerId==flt-a-*")
    assert created.returncode == 0, created.stderr
    filter_id = int(created.stdout)

    listed = cli(url, "filters", "list", "--query", "name==flt-a")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["ID", "NAME", "QUERY", "AUTO-ASSIGNS"]
    assert table_row(listed.stdout, str(filter_id)) == [str(filter_id), "flt-a",
                                                         "controllerId==flt-a-*", "-"]
    shown = cli(url, "filters", "show", str(filter_id))
    assert shown.returncode == 0
    assert table_row(shown.stdout, "matches") == ["matches", "3", "targets", "now"]
    assert table_row(shown.stdout, "auto-assigns") == ["auto-assigns", "-"]

    deleted = cli(url, "filters", "delete", str(filter_id))
    assert (deleted.returncode, deleted.stdout) == (0, "target filter %d deleted\n" % filter_id)
    gone = cli(url, "filters", "show", str(filter_id))
    assert (gone.returncode, gone.stderr) == (1, "ddi-lite: TargetFilterQuery with given "
                                                 "identifier {%d} does not exist.\n" % filter_id)


def test_filters_auto_assign_assigns_in_the_background_until_no_auto_assign(url):
    live.api(url, "POST", "/targets", [{"controllerId": "flt-b-%d" % n} for n in range(2)])
    distribution_set = a_set(url, "flt-b-set")
    filter_id = int(cli(url, "filters", "create", "flt-b", "controllerId==flt-b-*").stdout)
    assigned = cli(url, "filters", "auto-assign", str(filter_id), str(distribution_set["id"]),
                   "--type", "soft", "--weight", "200")
    assert assigned.returncode == 0, assigned.stderr
    assert assigned.stdout == "target filter %d auto-assigns flt-b-set:1.0 (set %d), soft, " \
        "weight 200\n" % (filter_id, distribution_set["id"])

    def actions_of_the_set():
        return live.api(url, "GET", "/actions?q=distributionSet.id==%d"
                        % distribution_set["id"])["content"]
    actions = live.wait_until(lambda: len(actions_of_the_set()) == 2 and actions_of_the_set(),
                              10, "both flt-b targets auto-assigned")
    assert {(action["forceType"], action["weight"]) for action in actions} == {("soft", 200)}
    shown = cli(url, "--json", "filters", "show", str(filter_id))
    document = json.loads(shown.stdout)
    assert (document["matchingTargets"], document["autoAssignDistributionSet"]["id"]) == \
        (2, distribution_set["id"])

    stopped = cli(url, "filters", "no-auto-assign", str(filter_id))
    assert (stopped.returncode, stopped.stdout) == (
        0, "target filter %d auto-assigns nothing now\n" % filter_id)
    live.api(url, "POST", "/targets", [{"controllerId": "flt-b-late"}])
    time.sleep(2.5)  # longer than the server's auto_assign_interval
    assert len(actions_of_the_set()) == 2


def test_filters_report_the_servers_refusals(url):
    bad_query = cli(url, "filters", "create", "flt-c", "controllerId=flt-c")
    assert bad_query.returncode == 1
    assert bad_query.stderr.startswith("ddi-lite: refused (HTTP 400): Cannot parse the query")
    filter_id = int(cli(url, "filters", "create", "flt-c", "controllerId==flt-c-*").stdout)
    taken = cli(url, "filters", "create", "flt-c", "name==x")
    assert (taken.returncode, taken.stderr) == (
        1, "ddi-lite: refused (HTTP 409): A target filter named 'flt-c' exists already.\n")
    unknown_set = cli(url, "filters", "auto-assign", str(filter_id), "999999")
    assert (unknown_set.returncode, unknown_set.stderr) == (
        1, "ddi-lite: DistributionSet with given identifier {999999} does not exist.\n")
    heavy = cli(url, "filters", "auto-assign", str(filter_id), "999999", "--weight", "1001")
    assert heavy.returncode == 1 and "1000" in heavy.stderr
