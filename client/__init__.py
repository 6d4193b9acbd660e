"""client: the programs that talk to a ddi-lite (or hawkBit) server from outside, over HTTP only.

    http.py        the one HTTP/1.1 client both programs use (standard library only)
    commands.py    `ddi-lite targets|upload|assign|actions|cancel|config`: a Management API client
    simulator.py   `ddi-lite simulate`: N virtual devices against any DDI server
    cli.py         the argparse definitions of those commands, for `ddi_lite.main()`

They never import the server's `storage`, `artifacts` or `ddi_lite`; the server imports only
`client.cli`, whose handlers load the rest when one of these commands runs, so `ddi-lite serve`
does not carry them.
"""

# The tenant of a server that has only one (hawkBit's, and ddi-lite's default).
DEFAULT_TENANT = "DEFAULT"
