"""The rollout rehearsal README describes ("Rehearse a staged rollout"), run as an operator runs
it: a real server, 1,000 simulated devices in two `ddi-lite simulate` processes (line 1
installs cleanly, line 2 fails half of its installations), and a rollout of four groups made,
watched and stopped with `ddi-lite rollouts`. The error threshold trips in group 2, the
rollout pauses by itself, and no device of groups 3 and 4 is ever offered the update.
"""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

import live

DEVICES_PER_LINE = 500
SIMULATOR_SEED = "7"


def ddi_lite(url, *words, timeout=60):
    result = subprocess.run([sys.executable, "-m", "ddi_lite", "--url", url] + list(words),
                            env=live.clean_environment(DDI_LITE_PASSWORD="admin"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    assert result.returncode == 0, (words, result.stderr)
    return result.stdout


def simulator(url, line, failure_rate):
    """`ddi-lite simulate` for one production line's devices, line<N>-00001..."""
    return subprocess.Popen(
        [sys.executable, "-m", "ddi_lite", "simulate", "--url", url, "--create-targets",
         "--prefix", "line%d-" % line, "--devices", str(DEVICES_PER_LINE),
         "--poll-interval", "2", "--failure-rate", str(failure_rate), "--seed", SIMULATOR_SEED,
         "--connections", "16", "--duration", "300", "--json"],
        env=live.clean_environment(DDI_LITE_PASSWORD="admin"), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)


def summary_of(process):
    """Stop a simulator as Ctrl-C does; the summary it prints then."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err[-2000:]
    return json.loads(out)


def group_targets(url, rollout_id, group_id):
    return [target["controllerId"] for target in live.api(
        url, "GET", "/rollouts/%d/deploygroups/%d/targets?limit=500" % (rollout_id, group_id)
    )["content"]]


@pytest.fixture
def server(tmp_path):
    server = live.DdiLite(tmp_path / "server")
    try:
        yield server
    finally:
        server.stop()


def test_a_failing_line_pauses_the_rollout_in_group_2_and_later_groups_never_see_it(
        server, tmp_path):
    url = server.url
    lines = [simulator(url, 1, 0.0), simulator(url, 2, 0.5)]
    try:
        live.wait_until(lambda: live.api(url, "GET", "/targets?limit=1")["total"]
                        == 2 * DEVICES_PER_LINE, 60, "the simulators created their targets")
        image = tmp_path / "line-os-2.0.swu"
        image.write_bytes(b"line os 2.0\n" * 1000)
        set_id = ddi_lite(url, "upload", str(image), "--name", "line-os",
                          "--version", "2.0").strip()
        rollout_id = int(ddi_lite(
            url, "rollouts", "create", "line-os-2.0", set_id, "controllerId==line*",
            "--group", "50:controllerId==line1-*", "--group", "50:controllerId==line2-*",
            "--group", "100:controllerId==line1-*", "--group", "100",
            "--success-threshold", "90", "--error-threshold", "20", "--start"))

        watched = subprocess.run(
            [sys.executable, "-m", "ddi_lite", "--url", url, "rollouts", "show",
             str(rollout_id), "--watch", "--interval", "1"],
            env=live.clean_environment(DDI_LITE_PASSWORD="admin"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            timeout=180)
        assert watched.returncode == 3, (watched.stdout[-3000:], watched.stderr)
        assert watched.stdout.split("rollout %d line-os-2.0: " % rollout_id)[-1] \
            .startswith("paused, ")

        groups = live.api(url, "GET", "/rollouts/%d/deploygroups" % rollout_id)["content"]
        assert [group["totalTargets"] for group in groups] == [250, 250, 250, 250]
        first, second, third, fourth = [group["totalTargetsPerStatus"] for group in groups]
        assert first["finished"] >= 0.9 * 250 and first["error"] == 0
        assert second["error"] > 0.2 * 250
        for later in (third, fourth):
            assert later["scheduled"] == 250
            assert later["running"] == later["finished"] == later["error"] == 0

        stopped = ddi_lite(url, "rollouts", "stop", str(rollout_id))
        assert stopped == "rollout %d stopped: its scheduled actions are cancelled\n" % rollout_id
        live.wait_until(lambda: live.api(url, "GET", "/rollouts/%d" % rollout_id)["status"]
                        == "stopped", 20, "the rollout stopped")
        # Group 2's devices that were installing when the rollout paused go on to the end;
        # the simulators are stopped only then (on a loaded machine the pause can come while
        # a hundred of them are still downloading, and a stop then cut them off).
        live.wait_until(lambda: live.api(url, "GET", "/rollouts/%d/deploygroups/%d" % (
            rollout_id, groups[1]["id"]))["totalTargetsPerStatus"]["running"] == 0, 60,
            "group 2's devices finished")
    finally:
        summaries = [summary_of(process) for process in lines]
    line1, line2 = summaries
    # Each simulated device closes only actions it was offered: line 1's devices closed
    # exactly group 1's, line 2's exactly group 2's. Groups 3 and 4 (the rest of line 1, the
    # rest of line 2) were offered nothing, though they polled all along.
    group_ids = [group["id"] for group in groups]
    assert line1["outcomes"] == {"success": 250}
    assert sum(line2["outcomes"].values()) == 250
    # Group 2's devices that were installing when the rollout paused went on to the end.
    final = live.api(url, "GET", "/rollouts/%d/deploygroups/%d" % (rollout_id, group_ids[1]))
    assert line2["outcomes"] == {"failure": final["totalTargetsPerStatus"]["error"],
                                 "success": final["totalTargetsPerStatus"]["finished"]}
    for group_id in group_ids[2:]:
        for controller_id in group_targets(url, rollout_id, group_id):
            actions = live.api(url, "GET", "/targets/%s/actions" % controller_id)["content"]
            assert [action["status"] for action in actions] == ["canceled"]
    assert line1["states"]["done"] == 250 and line2["states"]["idle"] >= 250


def readme_rehearsal_commands():
    """The commands of README's "Rehearse a staged rollout" block, continuation lines joined."""
    with open(os.path.join(live.PROJECT_DIR, "README.md"), encoding="utf-8") as readme:
        section = readme.read().split("### Rehearse a staged rollout", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+", " ", command.split("#", 1)[0]).strip()
            for command in block.replace("\\\n", " ").splitlines()]


def test_readme_rehearsal_makes_the_image_it_uploads_and_its_json_files_hold_json():
    commands = readme_rehearsal_commands()
    for number, command in enumerate(commands):
        upload = re.search(r"ddi-lite upload (\S+)", command)
        if upload:
            made = re.escape(upload.group(1))
            assert any(re.search(r">\s*%s(\s|$)" % made, earlier)
                       for earlier in commands[:number]), (
                "pasted as written, `%s` finds no file" % command)
        if re.search(r">\s*\S+\.json", command):
            assert "--json" in command.split(">")[0], command


def test_readme_rehearsal_quotes_its_patterns_for_shells_that_refuse_unmatched_globs():
    # zsh (macOS's shell) stops at an unquoted pattern that matches no file: "no matches
    # found: 50:controllerId==line1-*", as bash does with failglob.
    for command in readme_rehearsal_commands():
        unquoted = re.sub(r"'[^']*'", "", command)
        assert "*" not in unquoted, command

