"""ddi-lite under systemd: telling the service manager how the server is doing.

`notify()` speaks the sd_notify protocol with the standard library: one datagram of
`NAME=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET (an address starting with
'@' is in the abstract namespace). Without $NOTIFY_SOCKET it does nothing, so the server
calls it whether or not systemd started it.
"""

import logging
import os
import socket

log = logging.getLogger("ddi-lite")


###############################################################################
# Notifications (sd_notify) ###################################################
###############################################################################

def notify(*assignments):
    """Send `assignments` ("READY=1", "STATUS=serving", ...) in one datagram to $NOTIFY_SOCKET.
    Returns whether it was sent: False when the variable is unset or names no socket this
    speaks to (systemd's vsock: addresses), and after a failure, which is logged."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False
    message = "".join(assignment + "\n" for assignment in assignments).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sender:
            sender.sendto(message, address)
    except OSError as error:
        log.warning("cannot notify systemd at %s: %s", os.environ["NOTIFY_SOCKET"], error)
        return False
    return True
