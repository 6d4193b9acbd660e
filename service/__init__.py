"""Running ddi-lite as a long-lived service: the connection layer around the WSGI app
(`connections`), who sent a request through a reverse proxy (`forwarded`), and systemd's
side (`systemd`: readiness, the unit `ddi-lite.service`, install-service). Nothing here
knows the protocols; `ddi_lite.serve` wires it to the app."""
