"""Running ddi-lite as a long-lived service: the connection layer around the WSGI app
(`connections`), who sent a request through a reverse proxy (`forwarded`), and telling
systemd how the server is doing (`systemd`). Nothing here knows the protocols;
`ddi_lite.serve` wires it to the app."""
