"""Running ddi-lite as a long-lived service: the connection layer around the WSGI app
(`connections`), who sent a request through a reverse proxy (`forwarded`), systemd's side
(`systemd`: readiness, the unit `ddi-lite.service`, install-service), and what tells an
operator how it runs (`metrics`, `access_log`). Nothing here knows the protocols;
`ddi_lite.create_app` and `ddi_lite.serve` wire it to the app."""
