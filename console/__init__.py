"""console: the operators' web console at /ui, on the server's own port.

Server-rendered pages (Bottle's SimpleTemplate, `views/`) with plain forms that work without
JavaScript, and one small script (`static/console.js`) that keeps the overview and a running
rollout's page live and shows upload progress. Every read and every change goes through the same `storage/` rules the
Management API calls, with the same bodies; what differs is only the face: sign-in sessions
(console/sessions.py) instead of Basic authentication, HTML instead of JSON, redirects
after a change.

Import boundary: this package may use `storage/`, `artifacts/` and `service/` (who sent a
request, the body gate); it never imports the web trunk (ddi_lite imports it and hands in
what it must share: the error-status mapping and the artifact upload) nor the client
programs. Sections:

    Plumbing     the request wrapper: session, CSRF, body gate, errors as pages
    Sign-in      sign-in, sign-out
    Overview     counts by status, devices not seen, latest actions, running rollouts
                 (+ the live fragment)
    Targets      list, page, create, assign, cancel, tags, delete
    Software     modules, artifacts and their upload, sets
    Rollouts     list, create, a rollout's page with its groups (+ the live fragment), verbs
    Settings     tenant configuration keys, the gateway token
"""

import calendar
import collections
import json
import math
import os
import secrets
import re
import time
import urllib.parse

import bottle

from service import connections, forwarded
from storage import counts, filters, fleet, rollout_engine, rollouts, software, tags
from storage import errors as store_errors
from storage.accounts import PasswordNotChecked
from console.sessions import Sessions, tokens_match

PREFIX = "/ui"
COOKIE = "ddi_lite_console"
SIGNIN_COOKIE = "ddi_lite_signin"
HERE = os.path.dirname(os.path.abspath(__file__))
VIEWS = [os.path.join(HERE, "views")]
STATIC = os.path.join(HERE, "static")
PUBLIC_STATIC = {"console.css"}

UPDATE_STATUSES = ("in_sync", "pending", "error", "registered", "unknown")
TARGET_SORTS = collections.OrderedDict((
    ("controllerId", "Controller id"), ("name", "Name"), ("updateStatus", "Status"),
    ("lastControllerRequestAt", "Last seen")))
PAGE_SIZE = 25
# A target's page shows this many actions (newest first, older ones a link away), each with
# up to HISTORY_SHOWN status entries (the most a page of the store's query gives).
ACTIONS_PER_PAGE = 20
HISTORY_SHOWN = 500
# The overview shows this many running and paused rollouts (the oldest first).
ROLLOUTS_SHOWN = 10
# A device is "not seen" after this many polling intervals without a poll.
MISSED_POLLS = 3
# What a redirect after a change says on the next page (?said=<key>): no state kept for it.
SAID = {
    "signed-out": "Signed out.", "assigned": "Distribution set assigned.",
    "canceled": "Cancellation requested.", "force-canceled": "Action force-quit.",
    "tagged": "Tag added.", "untagged": "Tag removed.", "deleted": "Target deleted.",
    "created": "Created.", "module-deleted": "Software module deleted.",
    "set-deleted": "Distribution set deleted.", "uploaded": "Artifact uploaded.",
    "saved": "Settings saved.", "rollout-created": "Rollout created.",
    "started": "Rollout started.", "paused": "Rollout paused.", "resumed": "Rollout resumed.",
    "approved": "Rollout approved.", "denied": "Rollout denied.", "stopped": "Rollout stopped.",
    "next-group": "Next group started.", "retried": "A rollout of the failed targets was made.",
    "rollout-deleted": "Rollout deleted.",
}
SECURITY_HEADERS = {
    # No other host, ever: the console must work air-gapped, and this makes sure it does.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


###############################################################################
# Plumbing ####################################################################
###############################################################################

class BadInput(Exception):
    """A form field or parameter the console cannot read: a 400 page."""


class Refused(Exception):
    """A request answered with a page of its own (`status`, `message`)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# One console request: who, its session, the decoded query and form fields.
Context = collections.namedtuple("Context", "user session query form request")


# Where worker processes share the console's sessions, in the data directory.
SESSIONS_DIR = "console-sessions"


def shared_sessions(config):
    """The directory the workers share sessions in ([server] workers above 1), else None:
    one process keeps them in memory."""
    if config["server", "workers"] == 1:
        return None
    return os.path.join(config["server", "data_dir"], SESSIONS_DIR)


def ui(path="", **query):
    """A console URL: the console's place as this request sees it + path, with the query
    parameters that are not None."""
    url = here() + path
    query = [(name, value) for name, value in query.items() if value not in (None, "")]
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


def here():
    """Where the console is as the browser sees it: PREFIX behind the path prefix a trusted
    reverse proxy announced (X-Forwarded-Prefix), so that links, redirects and the cookie
    path still lead back to it when the proxy serves the server under a path of its own."""
    try:
        return bottle.request.environ.get(_HERE, PREFIX)
    except RuntimeError:  # outside a request
        return PREFIX


_HERE = "ddi_lite.console.here"
# A prefix is plain path segments: never "//host" (a link to another site) nor a backslash.
_PATH_PREFIX = re.compile(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")


def _under(prefix):
    return (prefix + PREFIX) if _PATH_PREFIX.fullmatch(prefix) else PREFIX


def segment(text):
    return urllib.parse.quote(text, safe="")


def _int(text, name, default=None, minimum=None):
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadInput("%s must be a whole number." % name)
    if not -2 ** 63 <= value < 2 ** 63 or (minimum is not None and value < minimum):
        raise BadInput("%s is out of range." % name)
    return value


def render(name, status=200, **values):
    values.setdefault("ui", ui)
    values.setdefault("segment", segment)
    values.setdefault("when", when)
    values.setdefault("size", human_size)
    body = bottle.template(name, template_lookup=VIEWS, **values)
    headers = dict(SECURITY_HEADERS)
    headers["Content-Type"] = "text/html; charset=utf-8"
    return bottle.HTTPResponse(body, status, headers)


def redirect(url):
    headers = dict(SECURITY_HEADERS)
    headers["Location"] = url
    return bottle.HTTPResponse(b"", 303, headers)


def when(millis):
    if millis is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(millis / 1000))


def human_size(count):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return ("%d %s" if unit == "bytes" else "%.1f %s") % (count, unit)
        count /= 1024.0


class Console:
    """The console's routes, bound to one app's accounts, blob store and settings.

    `error_status(error)`: the HTTP status of a store error (ddi_lite's one mapping).
    `upload(request, module_id, user)`: the Management API's streamed artifact upload."""

    def __init__(self, config, accounts, blobs, error_status, upload, gateway_status=None):
        """`gateway_status`: in gateway mode, what GET /rest/v1/gateway answers (a callable);
        the console's Gateway page shows it."""
        self.trusted_proxies = config["server", "trusted_proxies"]
        self.max_body = config["limits", "max_body_bytes"]
        self.max_upload = config["limits", "max_artifact_bytes"] + (1 << 20)
        self.accounts = accounts
        self.blobs = blobs
        self.sessions = Sessions(accounts, config["server", "console_session"],
                                 shared_sessions(config))
        self.error_status = error_status
        self.upload = upload
        # Gateway mode (README: Gateway mode): devices take their orders from upstream.
        self.follows_upstream = bool(config["upstream", "url"])
        self.gateway_status = gateway_status

    def install(self, app):
        page, form = self._page, self._form
        routes = (
            ("GET", "/signin", page(self.signin_page, public=True)),
            ("POST", "/signin", page(self.signin, public=True, takes_body=True)),
            ("POST", "/signout", form(self.signout)),
            ("GET", "", page(self.overview)),
            ("GET", "/fragment/overview", page(self.overview_fragment, fragment=True)),
            ("GET", "/targets", page(self.targets)),
            ("POST", "/targets", form(self.create_target)),
            ("GET", "/targets/<cid>", page(self.target)),
            ("POST", "/targets/<cid>/assign", form(self.assign)),
            ("POST", "/targets/<cid>/actions/<aid>/cancel", form(self.cancel)),
            ("POST", "/targets/<cid>/tags", form(self.add_tag)),
            ("POST", "/targets/<cid>/tags/<tid>/remove", form(self.remove_tag)),
            ("GET", "/targets/<cid>/delete", page(self.delete_target_page)),
            ("POST", "/targets/<cid>/delete", form(self.delete_target)),
            ("GET", "/software", page(self.software)),
            ("POST", "/software/modules", form(self.create_module)),
            ("GET", "/software/modules/<mid>", page(self.module)),
            ("GET", "/fragment/modules/<mid>/artifacts",
             page(self.artifacts_fragment, fragment=True)),
            ("POST", "/software/modules/<mid>/artifacts",
             page(self.upload_artifact, takes_body=True, upload=True)),
            ("POST", "/software/modules/<mid>/delete", form(self.delete_module)),
            ("POST", "/software/sets", form(self.create_set)),
            ("POST", "/software/sets/<did>/delete", form(self.delete_set)),
            ("GET", "/rollouts", page(self.rollouts)),
            ("POST", "/rollouts", form(self.create_rollout)),
            ("GET", "/rollouts/<rid>", page(self.rollout)),
            ("GET", "/fragment/rollouts/<rid>", page(self.rollout_fragment, fragment=True)),
            ("GET", "/rollouts/<rid>/groups/<gid>", page(self.rollout_group)),
            ("GET", "/rollouts/<rid>/<verb>", page(self.confirm_rollout_verb)),
            ("POST", "/rollouts/<rid>/<verb>", form(self.rollout_verb)),
            ("GET", "/settings", page(self.settings)),
            ("GET", "/gateway", page(self.gateway)),
            ("POST", "/settings", form(self.save_settings)),
            ("POST", "/settings/gateway-token", form(self.new_gateway_token)),
            ("GET", "/static/<name>", page(self.static, public=True)),
        )
        for method, path, handler in routes:
            app.route(PREFIX + path, method, handler)

    # --- the wrapper every console request goes through --------------------------------------

    def _form(self, handler):
        return self._page(handler, takes_body=True, csrf=True)

    def _page(self, handler, public=False, takes_body=False, csrf=False, upload=False,
              fragment=False):
        """`public`: answers without a session (the handler decides); `takes_body`: a POST
        whose body the gate may let in; `csrf`: a form field `csrf` must match the session's;
        `upload`: the artifact upload (its CSRF token comes in the query, before the body);
        `fragment`: a piece of a page for console.js, 401 instead of a redirect."""
        def route(**params):
            request = bottle.request
            environ = request.environ
            # How this request came (not public_url): a Secure cookie over plain HTTP would
            # never come back, and the operator could not sign in.
            origin = forwarded.Origin(environ, "", self.trusted_proxies)
            environ["ddi_lite.console.secure"] = origin.base_url.startswith("https:")
            environ[_HERE] = _under(urllib.parse.urlsplit(origin.base_url).path)
            before_body = connections.BEFORE_BODY in environ
            session = None
            try:
                # The overview's own refreshes are no sign of an operator: an open tab
                # must not keep a session alive for ever.
                session = self.sessions.find(request.get_cookie(COOKIE),
                                             touch=not (before_body or fragment))
                if session is None and not public:
                    if fragment or upload:
                        raise Refused(401, "Your session has ended; sign in again.")
                    return redirect(ui("/signin", next=here() + request.path[len(PREFIX):]
                                       if request.method == "GET" else None))
                if session is not None:
                    environ["REMOTE_USER"] = session.user  # for the access log
                query = _decoded(request.query)
                if upload and not tokens_match(session.csrf, query.get("csrf")):
                    raise Refused(403, "The form has expired; reload the page and try again.")
                if takes_body:
                    limit = self.max_upload if upload else self.max_body
                    if request.content_length > limit:
                        raise Refused(413, "The request is larger than %d bytes." % limit)
                    if before_body:
                        environ[connections.BODY_LIMIT] = limit
                        return bottle.HTTPResponse(b"", 100)
                form = _decoded(request.forms) if takes_body and not upload else {}
                if csrf and not tokens_match(session.csrf, form.get("csrf")):
                    raise Refused(403, "The form has expired; reload the page and try again.")
                context = Context(user=session.user if session else None, session=session,
                                  query=query, form=form, request=request)
                return handler(context, **params)
            except Refused as refused:
                return self._error_page(refused.status, refused.message, session, fragment)
            except BadInput as bad:
                return self._error_page(400, str(bad), session, fragment)
            except store_errors.StoreError as error:
                status = self.error_status(error)
                message = error.message or bottle.HTTP_CODES.get(status, "Refused")
                return self._error_page(status, message, session, fragment)
        return route

    def _error_page(self, status, message, session, fragment=False):
        if fragment or bottle.request.get_header("Accept", "").startswith("application/json"):
            response = bottle.HTTPResponse(json.dumps({"message": message}), status,
                                           {"Content-Type": "application/json"})
            response.headers.update(SECURITY_HEADERS)
            return response
        return render("error", status, title="Error %d" % status, message=message,
                      session=session)

    def _cookie(self, response, name, value, **options):
        """A cookie only the console's pages get, never scripts, never another site's
        requests; over TLS (as the request came, proxy included) only over TLS."""
        if bottle.request.environ["ddi_lite.console.secure"]:
            options["secure"] = True
        response.set_cookie(name, value, path=here(), httponly=True, samesite="Strict",
                            **options)

    # --- static files ---------------------------------------------------------------------

    def static(self, context, name):
        if context.session is None and name not in PUBLIC_STATIC:
            return redirect(ui("/signin"))
        if name not in ("console.css", "console.js"):
            raise Refused(404, "No such file.")
        response = bottle.static_file(name, root=STATIC)
        response.set_header("X-Content-Type-Options", "nosniff")
        return response

    ###########################################################################
    # Sign-in #################################################################
    ###########################################################################

    def signin_page(self, context, status=200, message=None):
        if context.session is not None and message is None:
            return redirect(ui())
        token = secrets.token_urlsafe(24)
        response = render("signin", status, title="Sign in", session=None, token=token,
                          message=message, next=_local_path(context.query.get("next")),
                          said=SAID.get(context.query.get("said")))
        # Double-submit token: a page elsewhere cannot sign a browser in as someone else.
        self._cookie(response, SIGNIN_COOKIE, token)
        return response

    def signin(self, context):
        form = context.form
        context = context._replace(query={"next": form.get("next")})
        token = bottle.request.get_cookie(SIGNIN_COOKIE)
        if not tokens_match(token, form.get("csrf")):
            return self.signin_page(context, 403, "The sign-in form has expired; try again.")
        user, password = form.get("user", ""), form.get("password", "")
        client = forwarded.Origin(bottle.request.environ, "", self.trusted_proxies).client_ip
        try:
            # The same check, and the same rationing of wrong guesses, as a Basic login.
            right = self.accounts.verify(user, password, client)
        except PasswordNotChecked as paused:
            seconds = max(1, math.ceil(paused.seconds))
            response = self.signin_page(context, 429, "Too many sign-ins; wait %d s and try "
                                        "again." % seconds)
            response.set_header("Retry-After", "%d" % seconds)
            return response
        if not right:
            return self.signin_page(context, 401, "Wrong user name or password.")
        session_id, _ = self.sessions.start(user)
        response = redirect(_local_path(form.get("next")) or ui())
        self._cookie(response, COOKIE, session_id)
        self._cookie(response, SIGNIN_COOKIE, "", max_age=0)
        return response

    def signout(self, context):
        self.sessions.end(bottle.request.get_cookie(COOKIE))
        response = redirect(ui("/signin", said="signed-out"))
        self._cookie(response, COOKIE, "", max_age=0)
        return response

    ###########################################################################
    # Overview ################################################################
    ###########################################################################

    def _overview_values(self):
        by_status = counts.store_counts()["targets"]
        total = sum(by_status.values())
        configs = fleet.all_configs("")
        polling = configs["pollingTime"]["value"]
        cutoff = int(time.time() * 1000) - MISSED_POLLS * _seconds(polling) * 1000
        unseen = fleet.list_targets("", "lastControllerRequestAt=lt=%d" % cutoff,
                                    "lastControllerRequestAt:ASC", 0, 10)
        actions = fleet.list_actions("", None, "id:DESC", 0, 10, full=True)["content"]
        moving = rollouts.list_rollouts("", "status=in=(RUNNING,PAUSED)", "id:ASC", 0,
                                        ROLLOUTS_SHOWN)
        rollout_rows = [(rollout, rollouts.list_groups("", rollout["id"], None, "id:ASC", 0,
                                                       rollouts.MAX_GROUPS)["content"])
                        for rollout in moving["content"]]
        return dict(by_status=[(status, by_status.get(status, 0)) for status in UPDATE_STATUSES],
                    total=total, unseen=unseen, polling=polling, missed=MISSED_POLLS,
                    unseen_list=ui("/targets", rsql="lastControllerRequestAt=lt=%d" % cutoff,
                                   sort="lastControllerRequestAt"),
                    actions=[_action_row(action) for action in actions],
                    rollouts=rollout_rows, rollouts_total=moving["total"])

    def overview(self, context):
        return render("overview", title="Overview", session=context.session,
                      said=SAID.get(context.query.get("said")),
                      gateway=self.gateway_status is not None, **self._overview_values())

    def gateway(self, context):
        """Gateway mode: upstream's health, the reports waiting for it, the artifact cache."""
        if self.gateway_status is None:
            raise Refused(404, "This server is not a gateway.")
        return render("gateway", title="Gateway", session=context.session,
                      gateway=self.gateway_status())

    def overview_fragment(self, context):
        return render("overview_live", **self._overview_values())

    ###########################################################################
    # Targets #################################################################
    ###########################################################################

    def targets(self, context):
        query = context.query
        text, rsql = query.get("text", "").strip(), query.get("rsql", "").strip()
        status, tag = query.get("status", ""), query.get("tag", "")
        if status and status not in UPDATE_STATUSES:
            raise BadInput("Unknown status '%s'." % status)
        sort = query.get("sort") or "controllerId"
        if sort not in TARGET_SORTS:
            raise BadInput("Targets cannot be sorted by '%s'." % sort)
        direction = "DESC" if query.get("dir") == "desc" else "ASC"
        offset = _int(query.get("offset"), "offset", 0, minimum=0)
        parts = []
        if text:
            quoted = '"*%s*"' % _rsql_literal(text)
            parts.append("controllerId==%s,name==%s" % (quoted, quoted))
        if status:
            parts.append("updateStatus==%s" % status)
        if tag:
            parts.append('tag=="%s"' % _rsql_literal(tag))
        if rsql:
            parts.append(rsql)
        q = ";".join("(%s)" % part for part in parts) or None
        found = fleet.list_targets("", q, "%s:%s" % (sort, direction), offset, PAGE_SIZE)
        all_tags = tags.TARGET_TAGS.list("", None, "name:ASC", 0, 500)["content"]
        here = dict(text=text, rsql=rsql, status=status, tag=tag, sort=sort,
                    dir=direction.lower())
        return render("targets", title="Targets", session=context.session, found=found,
                      offset=offset, page_size=PAGE_SIZE, here=here, statuses=UPDATE_STATUSES,
                      sorts=TARGET_SORTS, all_tags=all_tags,
                      said=SAID.get(query.get("said")))

    def create_target(self, context):
        form = context.form
        item = {"controllerId": form.get("controllerId", "").strip()}
        if form.get("name", "").strip():
            item["name"] = form["name"].strip()
        created = fleet.create_targets("", [item], context.user)[0]
        return redirect(ui("/targets/" + segment(created["controllerId"]), said="created"))

    def target(self, context, cid):
        target = fleet.get_target("", cid)
        offset = _int(context.query.get("actions"), "actions", 0, minimum=0)
        listed = fleet.list_target_actions("", cid, None, "id:DESC", offset, ACTIONS_PER_PAGE)
        actions = []
        for action in listed["content"]:
            full = _action_row(fleet.get_target_action("", cid, action["id"]))
            history = fleet.action_status_list(cid, action["id"], None, 0, HISTORY_SHOWN)
            full["history"], full["history_total"] = history["content"], history["total"]
            actions.append(full)
        sets = [ds for ds in software.list_sets("", None, "id:DESC", 0, 500)["content"]
                if ds["complete"] and not ds["deleted"]]
        return render("target", title="Target " + cid, session=context.session, target=target,
                      attributes=fleet.target_attributes(cid) or {},
                      assigned=fleet.target_assigned_ds("", cid),
                      installed=fleet.target_installed_ds("", cid), actions=actions,
                      actions_total=listed["total"], actions_offset=offset,
                      actions_per_page=ACTIONS_PER_PAGE,
                      target_tags=tags.tags_of_target("", cid),
                      all_tags=tags.TARGET_TAGS.list("", None, "name:ASC", 0, 500)["content"],
                      sets=sets, said=SAID.get(context.query.get("said")))

    def _refuse_local_orders(self):
        if self.follows_upstream:
            raise Refused(409, "This server is a gateway and follows its upstream server: "
                               "assign distribution sets and run rollouts there.")

    def assign(self, context, cid):
        self._refuse_local_orders()
        form = context.form
        set_id = _int(form.get("set"), "Distribution set")
        if set_id is None:
            raise BadInput("Choose a distribution set.")
        kind = form.get("type") or "forced"
        if kind not in ("forced", "soft", "downloadonly"):
            raise BadInput("Unknown assignment type '%s'." % kind)
        software.assign_from_target("", cid, {"id": set_id, "type": kind}, False, context.user)
        return redirect(ui("/targets/" + segment(cid), said="assigned"))

    def cancel(self, context, cid, aid):
        force = context.form.get("force") == "true"
        fleet.cancel_target_action(cid, _int(aid, "action"), force, context.user)
        return redirect(ui("/targets/" + segment(cid),
                           said="force-canceled" if force else "canceled"))

    def add_tag(self, context, cid):
        name = context.form.get("tag", "").strip()
        if not name:
            raise BadInput("Give a tag name.")
        fleet.get_target("", cid)  # a missing target is a 404 before a tag is made
        existing = [tag for tag in tags.TARGET_TAGS.list("", None, None, 0, 500)["content"]
                    if tag["name"] == name]
        tag = existing[0] if existing else \
            tags.TARGET_TAGS.create("", [{"name": name}], context.user)[0]
        tags.TARGET_TAGS.assign_one(tag["id"], cid)
        return redirect(ui("/targets/" + segment(cid), said="tagged"))

    def remove_tag(self, context, cid, tid):
        tags.TARGET_TAGS.unassign_one(_int(tid, "tag"), cid)
        return redirect(ui("/targets/" + segment(cid), said="untagged"))

    def delete_target_page(self, context, cid):
        return render("delete_target", title="Delete " + cid, session=context.session,
                      target=fleet.get_target("", cid))

    def delete_target(self, context, cid):
        if context.form.get("confirm") != cid:
            raise BadInput("Type the controller id to confirm the deletion.")
        fleet.delete_target(cid)
        return redirect(ui("/targets", said="deleted"))

    ###########################################################################
    # Software ################################################################
    ###########################################################################

    def software(self, context):
        modules = software.list_modules("", None, "id:DESC", 0, 500)["content"]
        sets = software.list_sets("", None, "id:DESC", 0, 500)["content"]
        module_types = software.list_module_types("", None, "id:ASC", 0, 500)["content"]
        set_types = software.list_set_types("", None, "id:ASC", 0, 500)["content"]
        return render("software", title="Software", session=context.session, modules=modules,
                      sets=sets, module_types=module_types, set_types=set_types,
                      said=SAID.get(context.query.get("said")))

    def create_module(self, context):
        form = context.form
        created = software.create_modules("", [{
            "type": form.get("type", ""), "name": form.get("name", "").strip(),
            "version": form.get("version", "").strip(),
            "description": form.get("description", "").strip() or None}], context.user)[0]
        return redirect(ui("/software/modules/%d" % created["id"], said="created"))

    def _module_values(self, mid):
        module_id = _int(mid, "module")
        return dict(module=software.get_module("", module_id),
                    artifacts=software.list_artifacts("", module_id, True))

    def module(self, context, mid):
        values = self._module_values(mid)
        return render("module", title="Module " + values["module"]["name"],
                      session=context.session, said=SAID.get(context.query.get("said")),
                      **values)

    def artifacts_fragment(self, context, mid):
        return render("artifacts_list", **self._module_values(mid))

    def upload_artifact(self, context, mid):
        module_id = _int(mid, "module")
        artifact = self.upload(context.request, module_id, context.user)
        if context.request.get_header("Accept", "").startswith("application/json"):
            return bottle.HTTPResponse('{"id": %d, "size": %d}' % (artifact["id"],
                                                                   artifact["size"]),
                                       201, {"Content-Type": "application/json"})
        return redirect(ui("/software/modules/%d" % module_id, said="uploaded"))

    def delete_module(self, context, mid):
        software.delete_module(_int(mid, "module"), self.blobs)
        return redirect(ui("/software", said="module-deleted"))

    def create_set(self, context):
        form = context.form
        module_ids = [_int(value, "module") for value in
                      bottle.request.forms.getall("module")]
        item = {"name": form.get("name", "").strip(), "version": form.get("version", "").strip(),
                "modules": [{"id": module_id} for module_id in module_ids]}
        if form.get("type"):
            item["type"] = form["type"]
        software.create_sets("", [item], context.user)
        return redirect(ui("/software", said="created"))

    def delete_set(self, context, did):
        software.delete_set(_int(did, "distribution set"), self.blobs)
        return redirect(ui("/software", said="set-deleted"))

    ###########################################################################
    # Rollouts ################################################################
    ###########################################################################

    def rollouts(self, context):
        offset = _int(context.query.get("offset"), "offset", 0, minimum=0)
        found = rollouts.list_rollouts("", None, "id:DESC", offset, PAGE_SIZE, full=True)
        sets = [ds for ds in software.list_sets("", None, "id:DESC", 0, 500)["content"]
                if ds["complete"] and not ds["deleted"]]
        saved = filters.list_filters("", None, "name:ASC", 0, 500)["content"]
        flow = fleet.all_configs("")["user.confirmation.flow.enabled"]["value"]
        return render("rollouts", title="Rollouts", session=context.session, found=found,
                      offset=offset, page_size=PAGE_SIZE, sets=sets, saved_filters=saved,
                      flow=flow, action_types=ROLLOUT_ACTION_TYPES,
                      said=SAID.get(context.query.get("said")))

    def create_rollout(self, context):
        """The form as the Management API's body: every check is storage.rollouts'."""
        self._refuse_local_orders()
        form = context.form
        body = {"name": form.get("name", "").strip(),
                "distributionSetId": _int(form.get("set"), "Distribution set"),
                "type": form.get("type") or "forced"}
        if body["distributionSetId"] is None:
            raise BadInput("Choose a distribution set.")
        text = form.get("query", "").strip()
        filter_id = _int(form.get("filter"), "Target filter")
        if filter_id is not None:
            if text:
                raise BadInput("Give either a target query or a saved filter, not both.")
            text = filters.get_filter("", filter_id)["query"]
        body["targetFilterQuery"] = text
        if form.get("description", "").strip():
            body["description"] = form["description"].strip()
        if form.get("groups", "").strip():
            body["amountGroups"] = form["groups"].strip()
        percentages = form.get("percentages", "").replace(",", " ").replace("%", " ").split()
        if percentages:
            body["groups"] = [{"targetPercentage": value} for value in percentages]
        for field, key in (("successThreshold", "successCondition"),
                           ("errorThreshold", "errorCondition")):
            if form.get(field, "").strip():
                body[key] = {"condition": "THRESHOLD", "expression": form[field].strip()}
        start_at = _start_at(form.get("startAt", "").strip())
        if start_at is not None:
            body["startAt"] = start_at
        if fleet.all_configs("")["user.confirmation.flow.enabled"]["value"]:
            body["confirmationRequired"] = form.get("confirmationRequired") == "true"
        created = rollouts.create_rollout("", body, context.user)
        return redirect(ui("/rollouts/%d" % created["id"], said="rollout-created"))

    def _rollout_values(self, rid):
        rollout_id = _int(rid, "rollout")
        rollout = rollouts.get_rollout("", rollout_id)
        groups = rollouts.list_groups("", rollout_id, None, "id:ASC", 0,
                                      rollouts.MAX_GROUPS)["content"]
        status = rollout["status"].upper()
        # The buttons are the verbs the life cycle allows now; two more are left out when
        # they could only be refused: no group left to start, no failed target to retry.
        pointless = set()
        if not any(group["status"] == "scheduled" for group in groups):
            pointless.add("next-group")
        if not rollout["totalTargetsPerStatus"]["error"]:
            pointless.add("retry")
        verbs = [verb for verb, (event, _, _) in ROLLOUT_VERBS.items()
                 if not rollout["deleted"] and rollout_engine.allowed(event, status)
                 and verb not in pointless]
        return dict(rollout=rollout, groups=groups, verbs=verbs, labels=ROLLOUT_VERBS,
                    confirmed=CONFIRMED_VERBS,
                    set_name=rollout["_links"]["distributionset"]["name"],
                    live=status in LIVE_ROLLOUT_STATUSES)

    def rollout(self, context, rid):
        values = self._rollout_values(rid)
        return render("rollout", title="Rollout " + values["rollout"]["name"],
                      session=context.session, said=SAID.get(context.query.get("said")),
                      **values)

    def rollout_fragment(self, context, rid):
        return render("rollout_live", session=context.session, **self._rollout_values(rid))

    def rollout_group(self, context, rid, gid):
        rollout_id, group_id = _int(rid, "rollout"), _int(gid, "group")
        rollout = rollouts.get_rollout("", rollout_id)
        group = rollouts.get_group("", rollout_id, group_id)
        offset = _int(context.query.get("offset"), "offset", 0, minimum=0)
        # The group's targets with their action of this rollout: its status is what an
        # operator watches (the same rows, in the same order, as group_targets gives).
        found = fleet.list_actions("", "rolloutGroup.id==%d" % group_id, "id:ASC", offset,
                                   PAGE_SIZE, full=True)
        return render("rollout_group", title="Group " + group["name"],
                      session=context.session, rollout=rollout, group=group,
                      actions=[_action_row(action) for action in found["content"]],
                      total=found["total"], offset=offset, page_size=PAGE_SIZE)

    def confirm_rollout_verb(self, context, rid, verb):
        if verb not in CONFIRMED_VERBS:
            raise Refused(404, "No such page.")
        rollout = rollouts.get_rollout("", _int(rid, "rollout"))
        return render("rollout_confirm", title="%s %s" % (verb.capitalize(), rollout["name"]),
                      session=context.session, rollout=rollout, verb=verb)

    def rollout_verb(self, context, rid, verb):
        if verb not in ROLLOUT_VERBS:
            raise Refused(404, "No such page.")
        rollout_id = _int(rid, "rollout")
        if verb in CONFIRMED_VERBS and context.form.get("confirm") != "yes":
            raise BadInput("Confirm the %s on its confirmation page." % verb)
        user, remark = context.user, context.form.get("remark", "").strip() or None
        if verb == "delete":
            rollouts.delete(rollout_id, user)
            return redirect(ui("/rollouts", said="rollout-deleted"))
        if verb == "retry":
            created = rollouts.retry("", rollout_id, user)
            return redirect(ui("/rollouts/%d" % created["id"], said="retried"))
        if verb in ("approve", "deny"):
            getattr(rollouts, verb)(rollout_id, remark, user)
        else:
            {"start": rollouts.start, "pause": rollouts.pause, "resume": rollouts.resume,
             "stop": rollouts.stop, "next-group": rollouts.trigger_next_group}[verb](
                rollout_id, user)
        return redirect(ui("/rollouts/%d" % rollout_id, said=ROLLOUT_VERBS[verb][2]))

    ###########################################################################
    # Settings ################################################################
    ###########################################################################

    def settings(self, context, new_token=None, status=200):
        configs = fleet.all_configs("")
        return render("settings", status, title="Settings", session=context.session,
                      values={key: item["value"] for key, item in configs.items()},
                      toggles=SETTING_TOGGLES, new_token=new_token,
                      said=SAID.get(context.query.get("said")))

    def save_settings(self, context):
        form = context.form
        body = collections.OrderedDict()
        body["pollingTime"] = form.get("pollingTime", "").strip()
        body["authentication.header.authority"] = \
            form.get("authentication.header.authority", "").strip()
        for key, _ in SETTING_TOGGLES:
            body[key] = form.get(key) == "true"
        fleet.put_configs("", body, context.user)
        return redirect(ui("/settings", said="saved"))

    def new_gateway_token(self, context):
        token = secrets.token_hex(24)
        fleet.put_config("", "authentication.gatewaytoken.key", {"value": token}, context.user)
        # Shown on this answer only: the settings page never shows it again.
        return self.settings(context, new_token=token)


SETTING_TOGGLES = (
    ("authentication.targettoken.enabled", "Devices may authenticate with their target token"),
    ("authentication.gatewaytoken.enabled", "Devices may authenticate with the gateway token"),
    ("authentication.header.enabled",
     "Devices may be authenticated by a TLS proxy's certificate headers"),
    ("user.confirmation.flow.enabled", "Devices must confirm an assignment before installing"),
)


# A rollout's verbs in the console's URLs: (the life cycle's event that allows it, the
# button's label, what the page says after it).
ROLLOUT_VERBS = collections.OrderedDict((
    ("start", ("start", "Start", "started")),
    ("pause", ("pause", "Pause", "paused")),
    ("resume", ("resume", "Resume", "resumed")),
    ("next-group", ("trigger_next_group", "Start the next group now", "next-group")),
    ("approve", ("approve", "Approve", "approved")),
    ("deny", ("deny", "Deny", "denied")),
    ("retry", ("retry", "Retry the failed targets", "retried")),
    ("stop", ("stop", "Stop…", "stopped")),
    ("delete", ("delete", "Delete…", "rollout-deleted")),
))
# These two are asked again on a page of their own: neither can be undone.
CONFIRMED_VERBS = ("stop", "delete")
# While a rollout is in one of these, its page refreshes its progress by itself.
LIVE_ROLLOUT_STATUSES = (rollout_engine.READY, rollout_engine.STARTING, rollout_engine.RUNNING,
                         rollout_engine.PAUSED, rollout_engine.STOPPING)
ROLLOUT_ACTION_TYPES = (("forced", "forced"), ("soft", "soft"),
                        ("downloadonly", "download only"))


def _decoded(multidict):
    """Form fields or query parameters as UTF-8 text; bad bytes are a 400 page."""
    try:
        decoded = multidict.decode()
        for value in decoded.values():
            value.encode("utf-8")
    except UnicodeError:
        raise BadInput("The request is not valid UTF-8.")
    return decoded


def _local_path(path):
    """`path` when it is a console path on this server (no open redirect), else None."""
    console = here()
    if not path or not (path == console or path.startswith(console + "/")):
        return None
    if path.startswith("//") or "\\" in path:
        return None
    return path


def _rsql_literal(text):
    """`text` for the inside of a double-quoted RSQL value: quotes, backslashes and stars
    are literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("*", "\\*")


def _start_at(text):
    """A start time from the form (`YYYY-MM-DDTHH:MM[:SS]`, UTC, as a datetime-local field
    sends it) in epoch milliseconds; None when empty."""
    if not text:
        return None
    for layout in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return calendar.timegm(time.strptime(text, layout)) * 1000
        except (ValueError, OverflowError):
            continue
    raise BadInput("Give the start time as YYYY-MM-DD HH:MM (UTC).")


def _seconds(duration):
    try:
        hours, minutes, seconds = (int(part) for part in str(duration).split("~")[0].split(":"))
    except ValueError:
        return 300
    return hours * 3600 + minutes * 60 + seconds


def _action_row(action):
    """A full action document with the controller id and set name its links carry."""
    row = dict(action)
    links = action.get("_links", {})
    href = links.get("target", {}).get("href", "")
    row["controllerId"] = urllib.parse.unquote(href.rpartition("/targets/")[2]) if href else ""
    row["setName"] = links.get("distributionset", {}).get("name", "")
    return row
