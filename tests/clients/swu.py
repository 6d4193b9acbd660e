"""Signed SWUpdate images (.swu), built in the test.

A .swu is a cpio archive in the "new ASCII" format with checksums (magic 070702): the first
member is sw-description, the second its CMS signature sw-description.sig, then the payloads.
sw-description lists every payload with its SHA-256. A `files` entry with a `path` and no
`device` is installed by SWUpdate's rawfile handler, which only writes that file.
"""

import hashlib
import subprocess

CPIO_MAGIC = b"070702"  # newc with a per-file checksum ("crc" format)
TRAILER = "TRAILER!!!"


def _pad(length):
    return b"\0" * (-length % 4)


def cpio_member(name, data, inode, mode=0o100644):
    """One member: the 110-byte ASCII header, the name (NUL-terminated), the data, each
    padded to a multiple of four bytes."""
    encoded = name.encode("utf-8") + b"\0"
    checksum = sum(data) & 0xFFFFFFFF
    fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), checksum)
    header = CPIO_MAGIC + b"".join(b"%08X" % value for value in fields)
    head = header + encoded
    return head + _pad(len(head)) + data + _pad(len(data))


def cpio_archive(members):
    """The archive of `members`, a list of (name, bytes), in that order, with its trailer."""
    parts = [cpio_member(name, data, inode) for inode, (name, data) in enumerate(members, 1)]
    parts.append(cpio_member(TRAILER, b"", 0, mode=0))
    return b"".join(parts)


def sw_description(version, hardware_revisions, files):
    """A libconfig sw-description. `files`: (payload name, absolute install path, bytes)."""
    entries = []
    for name, path, data in files:
        entries.append(
            '\t\t{\n'
            '\t\t\tfilename = "%s";\n'
            '\t\t\tpath = "%s";\n'
            '\t\t\tsha256 = "%s";\n'
            '\t\t}' % (name, path, hashlib.sha256(data).hexdigest()))
    return (
        'software =\n'
        '{\n'
        '\tversion = "%s";\n'
        '\thardware-compatibility: [ %s ];\n'
        '\tfiles: (\n%s\n\t);\n'
        '}\n' % (version, ", ".join('"%s"' % rev for rev in hardware_revisions),
                 ",\n".join(entries))).encode("utf-8")


class SigningKey:
    """A throwaway RSA key and self-signed certificate, made with the openssl command."""

    def __init__(self, directory):
        self.key = str(directory / "signing.key")
        self.cert = str(directory / "signing.crt")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=ddi-lite client tests", "-keyout", self.key, "-out", self.cert],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def sign(self, data, directory):
        """The DER CMS signature of `data`, as SWUpdate's CMS verification wants it."""
        source = directory / "sw-description"
        signature = directory / "sw-description.sig"
        source.write_bytes(data)
        subprocess.run(
            ["openssl", "cms", "-sign", "-in", str(source), "-out", str(signature),
             "-signer", self.cert, "-inkey", self.key, "-outform", "DER", "-nosmimecap",
             "-binary"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        return signature.read_bytes()


def build_swu(signing_key, directory, version, hardware_revisions, files):
    """A signed .swu installing `files` ((payload name, install path, bytes)) as raw files."""
    directory.mkdir(parents=True, exist_ok=True)
    description = sw_description(version, hardware_revisions, files)
    signature = signing_key.sign(description, directory)
    members = [("sw-description", description), ("sw-description.sig", signature)]
    members += [(name, data) for name, _, data in files]
    return cpio_archive(members)
