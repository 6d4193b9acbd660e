"""nginx (Debian's `nginx` package) as the TLS reverse proxy in front of a live ddi-lite, and a
throwaway PKI for it made with the openssl command line.

`server_config()` renders the site configuration README's "Behind a TLS reverse proxy" shows;
a test renders it with README's example values and finds README's text. `Nginx` wraps it in
what a test run needs and nothing from the system: `-p` a prefix directory holding the pid
file, logs and temp files, `-c` the generated configuration, `daemon off`, stopped for sure.
"""

import os
import shutil
import socket
import subprocess

from live import free_port, stop_process, wait_until

STARTUP_TIMEOUT = 10.0


def binary():
    return shutil.which("nginx")


def server_config(listen, server_name, certificate, certificate_key, devices_ca, authority,
                  upstream):
    """The nginx site in front of ddi-lite. `listen`: the listen addresses, `upstream`:
    ddi-lite's host:port, `authority`: the devices CA's issuer hash (the value of ddi-lite's
    [ddi] header_authority)."""
    listen_lines = "".join("    listen %s ssl;\n" % address for address in listen)
    return """\
# A device's controller id is the common name (CN) of its client certificate.
map $ssl_client_s_dn $ssl_client_cn {
    default "";
    ~(^|,)CN=(?<cn>[^,]+) $cn;
}

server {
%(listen_lines)s    server_name %(server_name)s;

    ssl_certificate     %(certificate)s;
    ssl_certificate_key %(certificate_key)s;

    # Devices with a certificate from this CA log in with it (mTLS); devices without one
    # use their TargetToken. A certificate nginx cannot verify is refused (400).
    ssl_client_certificate %(devices_ca)s;
    ssl_verify_client optional;

    # Uploads and downloads stream through; ddi-lite enforces its own size limits.
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_http_version 1.1;

    location / {
        proxy_pass http://%(upstream)s;

        # How the device reached us, so that every link ddi-lite hands out leads back here.
        # Each header is set (or emptied, which removes it), so none comes from the device.
        proxy_set_header Host               $host;
        proxy_set_header X-Forwarded-Proto  $scheme;
        proxy_set_header X-Forwarded-Host   $host;
        proxy_set_header X-Forwarded-Port   $server_port;
        proxy_set_header X-Forwarded-For    $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Prefix "";
        proxy_set_header Forwarded          "";

        # Who the device is, when it showed a certificate nginx verified (hawkBit's headers).
        proxy_set_header X-Controller-Id    $ssl_client_cn;
        proxy_set_header X-Authority        %(authority)s;
        proxy_set_header X-Ssl-Client-Cn    "";
    }
}
""" % dict(locals(), listen_lines=listen_lines)


class Nginx:
    """nginx on a free loopback port, TLS with `pki`'s server certificate, passing requests to
    127.0.0.1:`upstream_port`."""

    def __init__(self, directory, pki, upstream_port):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.error_log = directory / "error.log"
        site = server_config(["127.0.0.1:%d" % self.port], "localhost", pki.server_cert,
                             pki.server_key, pki.ca_cert, pki.issuer_hash,
                             "127.0.0.1:%d" % upstream_port)
        config = directory / "nginx.conf"
        config.write_text(self._main_config(site), encoding="utf-8")
        log = open(str(directory / "stderr.log"), "wb")
        with log:
            self.process = subprocess.Popen(
                [binary(), "-p", str(directory), "-c", str(config), "-e", str(self.error_log)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            wait_until(self._ready, STARTUP_TIMEOUT, "nginx start-up", on_timeout=self.log)
        except BaseException:
            self.stop()
            raise

    def _main_config(self, site):
        here = self.directory
        # As root, nginx would run its worker as `nobody`, which cannot reach the test's
        # private temporary directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp_paths = "".join("    %s_temp_path %s;\n" % (kind, here / ("temp-" + kind))
                             for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        indented = "".join("    " + line if line.strip() else line
                           for line in site.splitlines(True))
        return ("daemon off;\n%sworker_processes 1;\npid %s;\nerror_log %s info;\n"
                "events {\n    worker_connections 64;\n}\n"
                "http {\n    access_log %s;\n%s\n%s}\n"
                % (user, here / "nginx.pid", self.error_log, here / "access.log", temp_paths,
                   indented))

    def _ready(self):
        if self.process.poll() is not None:
            raise AssertionError("nginx exited with %s:\n%s"
                                 % (self.process.returncode, self.log()))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self):
        parts = []
        for name in ("stderr.log", "error.log", "access.log"):
            try:
                text = (self.directory / name).read_text("utf-8", errors="replace")
            except OSError:
                continue
            parts.append("--- nginx %s ---\n%s" % (name, text[-3000:]))
        return "\n".join(parts)

    def stop(self):
        stop_process(self.process, group=True)


class Pki:
    """A throwaway CA, a server certificate for localhost and 127.0.0.1, and client
    certificates whose common name is a controller id. `issuer_hash` is what
    `openssl x509 -hash` prints for the CA: the value nginx passes as X-Authority."""

    def __init__(self, directory, name="ddi-lite test CA"):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.ca_cert, self.ca_key = directory / "ca.crt", directory / "ca.key"
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-days", "2", "-subj", "/CN=" + name,
                      "-keyout", self.ca_key, "-out", self.ca_cert)
        self.issuer_hash = self._openssl("x509", "-noout", "-hash", "-in", self.ca_cert).strip()
        self.server_cert, self.server_key = self._issue(
            "server", "localhost", "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
                                   "extendedKeyUsage = serverAuth\n")

    def client(self, controller_id):
        """(certificate, key) paths of a device certificate for `controller_id`."""
        return self._issue("client-" + controller_id, controller_id,
                           "extendedKeyUsage = clientAuth\n")

    def _issue(self, stem, common_name, extensions):
        cert, key, request = (self.directory / (stem + suffix)
                              for suffix in (".crt", ".key", ".csr"))
        extfile = self.directory / (stem + ".ext")
        extfile.write_text("basicConstraints = CA:FALSE\n" + extensions, encoding="utf-8")
        self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-subj", "/CN=" + common_name, "-keyout", key, "-out", request)
        self._openssl("x509", "-req", "-in", request, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                      "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                      "-extfile", extfile, "-out", cert)
        return cert, key

    @staticmethod
    def _openssl(*arguments):
        result = subprocess.run(["openssl"] + [str(argument) for argument in arguments],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError("openssl %s failed:\n%s" % (arguments[0],
                                                            result.stderr.decode()[-2000:]))
        return result.stdout.decode("ascii", errors="replace")
