"""Running ddi-lite as a long-lived service: the connection layer around the WSGI app
(`connections`). Nothing here knows the protocols; `ddi_lite.serve` wires it to the app."""
