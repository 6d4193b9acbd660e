"""service.settings: the server's settings schema, each setting with its type, default and the
help text that `--help`, config.ini and the error messages share; and which [ddi] settings are
the server-wide defaults of tenant configuration keys. Settings of a capability with a module
of its own (the artifact store, gateway mode) are described there; ddi_lite.SETTINGS is the
whole schema that service.configuration reads by.
"""

from service.configuration import Setting
from storage.db import CACHE_KIB, MMAP_MIB

SERVER_SETTINGS = (
    Setting("server", "host", "str", "0.0.0.0", "Address to listen on."),
    Setting("server", "port", "port", 8080, "TCP port to listen on (hawkBit's port)."),
    Setting("server", "data_dir", "path", "",
            "Where the database and artifacts live (created on first start); empty: "
            "/var/lib/ddi-lite as root, else $XDG_DATA_HOME/ddi-lite or ~/.local/share/ddi-lite."),
    Setting("server", "threads", "positive", 4,
            "Worker threads answering requests. 4: polls/s with 1, 2, 4, 8, 16 threads were "
            "1.53x, 1.10x, 1.09x, 1, 0.81x of 8's (tests/bench/run.py --only threads, 2 cores); "
            "1 is fastest, but one download to a slow device or one login holds it."),
    Setting("server", "workers", "workers", 1,
            "Processes serving requests, each with its own threads and database connections "
            "(auto: one per core): one Python process uses one core. 1: one process, nothing "
            "forked; more pays only where cores are idle (README: Worker processes)."),
    Setting("server", "public_url", "str", "",
            "Base URL used in links (e.g. https://updates.example.org); empty: from the request."),
    Setting("server", "api_docs", "bool", True,
            "Answer GET /v3/api-docs (the OpenAPI description of both APIs) without login."),
    Setting("server", "trusted_proxies", "networks", "127.0.0.1, ::1",
            "Peers whose X-Forwarded-* and client-certificate headers are believed."),
    Setting("server", "max_connections", "positive", 1000,
            "Most connections open at once; beyond, the quietest one not at work makes room."),
    Setting("server", "header_timeout", "positive", 10,
            "Seconds a client has to send a request's line and headers, or be disconnected."),
    Setting("server", "idle_timeout", "positive", 60,
            "Seconds a connection may stay silent (between requests, or within a body)."),
    Setting("server", "stop_timeout", "count", 10,
            "Seconds a stop (SIGTERM) gives requests in flight to finish before closing them."),
    Setting("server", "access_log", "bool", False,
            "Log one line per request (logger ddi-lite.access): method, path, status, time."),
    Setting("server", "metrics_open", "bool", False,
            "Answer GET /metrics (Prometheus) without an operator login."),
    Setting("server", "console", "bool", True,
            "Serve the operators' web console at /ui (sign-in with the operator accounts)."),
    Setting("server", "console_session", "positive", 1800,
            "Seconds a console sign-in lasts without a request; kept in memory, so a restart "
            "signs everyone out."),
    Setting("ddi", "polling_time", "duration", "00:05:00",
            "How long devices sleep between polls, HH:MM:SS (tenant key pollingTime)."),
    Setting("ddi", "min_polling_time", "duration", "00:00:30",
            "Shortest polling time a tenant may configure (hawkBit: 00:00:30)."),
    Setting("ddi", "maintenance_window_poll_count", "int", 3,
            "Polls a device should make before a maintenance window opens."),
    Setting("ddi", "target_token_auth", "bool", True,
            "Accept 'Authorization: TargetToken <token>' (per-target security token)."),
    Setting("ddi", "gateway_token_auth", "bool", False,
            "Accept 'Authorization: GatewayToken <key>' (any controller; new ones register)."),
    Setting("ddi", "gateway_token", "str", "", "The gateway token; empty disables it."),
    Setting("ddi", "header_auth", "bool", False,
            "Accept a device identity from a TLS-terminating proxy in trusted_proxies."),
    Setting("ddi", "header_authority", "str", "",
            "Issuer hashes or authority values the proxy may present, comma separated."),
    Setting("limits", "status_entries_per_action", "int", 1000,
            "Most history entries an action may collect (0: no limit)."),
    Setting("limits", "messages_per_status", "int", 50,
            "Most messages one feedback may carry (0: no limit)."),
    Setting("limits", "attributes_per_target", "int", 100,
            "Most configData attributes a target may have (0: no limit)."),
    Setting("limits", "max_body_bytes", "int", 1048576,
            "Largest JSON or CBOR request body accepted."),
    Setting("limits", "max_artifact_bytes", "int", 1073741824,
            "Largest artifact an upload may store (hawkBit: 1 GiB)."),
    Setting("limits", "max_header_bytes", "positive", 16384,
            "Largest request line and headers accepted (hawkBit: 8 KiB)."),
    Setting("limits", "login_failures", "count", 5,
            "Wrong operator logins a client may make before it must pause (0: no limit)."),
    Setting("limits", "login_pause", "positive", 30,
            "Seconds such a client is answered 429 without a password check."),
    Setting("limits", "password_checks", "positive", 1,
            "Most password hashes computed at once (0.1 s of CPU each); more logins get 429."),
    Setting("storage", "cache_kib", "count", CACHE_KIB,
            "SQLite page cache per database connection, in KiB; the server holds threads + 3 "
            "connections. 256: with 8 threads and 100k targets the RSS stayed at 1.03x that "
            "with 1k (1024: 1.20x, 4096: 1.74x) at the same poll rate; the OS file cache "
            "serves the rest."),
    Setting("storage", "mmap_mib", "mib", MMAP_MIB,
            "How much of the database file each connection maps into memory, in MiB. "
            "0 (none): mapped pages count in the RSS once per connection (64 MiB: 100k targets took "
            "5.3x the RSS of 1k)."),
    Setting("database", "url", "database_url", "",
            "Empty: the SQLite file in data_dir, nothing to set up. postgresql://user:password@"
            "host:5432/database: PostgreSQL (pip install ddi-lite[postgres]), for several "
            "nodes sharing one database (README: PostgreSQL)."),
    Setting("scheduler", "auto_assign_interval", "positive", 2,
            "Seconds between runs of auto-assignment (target filters with a distribution set); "
            "a target that registers or reports attributes is checked at once."),
    Setting("scheduler", "auto_assign_full_pass_hours", "count", 24,
            "Hours between checks of every target by each auto-assigning filter; in between, "
            "only targets that changed are checked (0: never)."),
    Setting("scheduler", "rollout_interval", "positive", 2,
            "Seconds between evaluations of running rollouts (thresholds, next groups, "
            "startAt); device feedback on a rollout's action makes one at once. 2, as "
            "auto-assignment: a pass over 10 running rollouts is a few reads each."),
)

# Which tenant configuration key a [ddi] setting is the server-wide default of.
TENANT_DEFAULTS = {
    "polling_time": "pollingTime",
    "maintenance_window_poll_count": "maintenanceWindowPollCount",
    "target_token_auth": "authentication.targettoken.enabled",
    "gateway_token_auth": "authentication.gatewaytoken.enabled",
    "gateway_token": "authentication.gatewaytoken.key",
    "header_auth": "authentication.header.enabled",
    "header_authority": "authentication.header.authority",
}
