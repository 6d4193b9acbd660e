"""SWUpdate (Debian's `swupdate` package, suricatta hawkBit module) run as a device.

Each instance gets its own directory: TMPDIR (SWUpdate's sockets and scratch files), a
libconfig file with the `identify` attributes it sends as configData, and its log. The
process forks helpers, so it is started in its own session and stopped as a process group.
"""

import os
import shutil
import subprocess

from live import exited, stop_process

BOARD = "board"
REVISION = "1.0"


def binary():
    return shutil.which("swupdate")


class Swupdate:
    """`swupdate -v -k CERT -H board:1.0 -f CONFIG -u '<suricatta options>'`.

    Suricatta options: `-t DEFAULT -u URL -i ID`, the target token (`-k`) or gateway token
    (`-g`), `-p 1` (poll every second until the server says otherwise: the first poll may
    fail), `-r`/`-w` download retries and the wait between them, `-c STATE` the start-up
    report (2: installed, 3: failed). `tls`: settings of the configuration file's `suricatta`
    section that have no flag: `cafile`, and `sslcert` + `sslkey` for a client certificate.
    """

    def __init__(self, directory, url, controller_id, certificate, target_token=None,
                 gateway_token=None, confirm=None, attributes=None, retry_wait=1, tls=None):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        tmp = directory / "tmp"
        tmp.mkdir(exist_ok=True)
        self.log_path = directory / "swupdate.log"
        config = directory / "swupdate.cfg"
        config.write_text(self._config(attributes or {}, tls or {}), encoding="utf-8")
        suricatta = ["-t", "DEFAULT", "-u", url, "-i", controller_id, "-p", "1",
                     "-r", "5", "-w", str(retry_wait)]
        if target_token is not None:
            suricatta += ["-k", target_token]
        if gateway_token is not None:
            suricatta += ["-g", gateway_token]
        if confirm is not None:
            suricatta += ["-c", str(confirm)]
        self.command = [binary(), "-v", "-k", certificate, "-H", "%s:%s" % (BOARD, REVISION),
                        "-f", str(config), "-u", " ".join(suricatta)]
        environment = dict(os.environ, TMPDIR=str(tmp))
        with open(str(self.log_path), "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=str(directory), env=environment, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def _config(attributes, tls):
        # SWUpdate refuses a configuration file without a `globals` section.
        text = "globals :\n{\n};\n"
        if tls:
            text += "suricatta :\n{\n%s};\n" % "".join('\t%s = "%s";\n' % item
                                                     for item in tls.items())
        entries = ",\n".join('\t{ name = "%s"; value = "%s"; }' % item
                             for item in attributes.items())
        if entries:
            text += "identify : (\n%s\n);\n" % entries
        return text

    def log(self, tail=6000):
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "--- swupdate log (%s) ---\n%s%s" % (self.log_path, text[-tail:], self.threads())

    def threads(self):
        """Where each thread of the process group waits (Linux /proc), for hangs."""
        lines = []
        for pid in sorted(os.listdir("/proc"), key=lambda name: (len(name), name)):
            if not pid.isdigit():
                continue
            try:
                if os.getpgid(int(pid)) != self.process.pid:
                    continue
                for tid in sorted(os.listdir("/proc/%s/task" % pid)):
                    base = "/proc/%s/task/%s/" % (pid, tid)
                    with open(base + "comm") as comm, open(base + "wchan") as wchan:
                        lines.append("  pid %s tid %s %s: %s" % (pid, tid, comm.read().strip(),
                                                                 wchan.read().strip()))
            except OSError:
                continue
        return "\n--- swupdate threads ---\n" + "\n".join(lines) if lines else ""

    def running(self):
        # Not poll(): the process stays unreaped until stop() has signalled its group.
        return not exited(self.process)

    def stop(self):
        stop_process(self.process, group=True)
