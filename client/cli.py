"""client.cli: the argparse definitions of the client commands, for `ddi_lite.main()`.

The operator commands (`targets`, `upload`, `assign`, `actions`, `cancel`, `modules`, `sets`,
`config`, `tags`, `filters`, `rollouts`), their --url/--user/--password/--json options, and
`simulate`. This module imports only the standard library: the server builds its parser from
it, and each command's handler imports client.commands, client.rollouts or client.simulator
only when that command runs.
"""

import argparse
import textwrap

from client import DEFAULT_TENANT

OPERATOR_OPTIONS = ("url", "user", "password", "json")

# The fields each --query (RSQL, the `q` of the Management API) may name: those the server
# defines in storage/query.py, aliases after their field. This module cannot import the server;
# tests/test_cli.py fails when the two lists differ.
TARGET_QUERY_FIELDS = (
    "controllerId", "id", "name", "description", "updateStatus", "ipAddress", "group",
    "assignedDS.name", "assignedDS.version", "installedDS.name", "installedDS.version",
    "lastControllerRequestAt", "failedrollout", "attribute.<key>", "metadata.<key>", "tag",
    "tag.name", "type", "type.id", "type.key", "type.name", "targetType", "targetType.id",
    "targetType.key", "targetType.name", "createdAt", "createdBy", "lastModifiedAt",
    "lastModifiedBy")
ACTION_QUERY_FIELDS = (
    "id", "active", "status", "detailStatus", "lastStatusCode", "weight",
    "target.controllerId", "target.name", "target.updateStatus", "target.address",
    "distributionSet.id", "distributionSet.name", "distributionSet.version",
    "distributionSet.type", "rollout.id", "rollout.name", "rolloutGroup.id",
    "rolloutGroup.name", "createdAt", "createdBy", "lastModifiedAt", "lastModifiedBy")
MODULE_QUERY_FIELDS = (
    "id", "name", "version", "description", "type", "type.id", "type.key", "type.name",
    "metadata.<key>", "createdAt", "createdBy", "lastModifiedAt", "lastModifiedBy")
SET_QUERY_FIELDS = (
    "id", "name", "version", "description", "type", "type.id", "type.key", "type.name",
    "module.id", "module.name", "valid", "complete", "metadata.<key>", "tag", "tag.name",
    "createdAt", "createdBy", "lastModifiedAt", "lastModifiedBy")
TAG_QUERY_FIELDS = (
    "id", "name", "description", "colour", "createdAt", "createdBy", "lastModifiedAt",
    "lastModifiedBy")
ROLLOUT_QUERY_FIELDS = (
    "id", "name", "description", "status", "distributionSet.id", "distributionSet.name",
    "distributionSet.version", "distributionSet.type", "createdAt", "createdBy",
    "lastModifiedAt", "lastModifiedBy")
ROLLOUT_STATUSES = ("creating", "waiting_for_approval", "approval_denied", "ready", "starting",
                    "running", "paused", "stopping", "stopped", "finished", "deleting",
                    "deleted")
FILTER_QUERY_FIELDS = (
    "id", "name", "autoAssignDistributionSet.name", "autoAssignDistributionSet.version",
    "createdAt", "createdBy", "lastModifiedAt", "lastModifiedBy")
# The statuses an action may be in (storage/transitions.py), and those of a target (§5.1).
ACTION_STATUSES = ("scheduled", "wait_for_confirmation", "running", "retrieved", "canceling",
                   "canceled", "finished", "error", "downloaded")
TARGET_UPDATE_STATUSES = ("unknown", "registered", "pending", "in_sync", "error")

RSQL_OPERATORS = ("operators: == (* is a wildcard), !=, =lt=, =le=, =gt=, =ge=, =in=(A,B), "
                  "=out=(A,B); ';' is and, ',' is or, parentheses group; times are epoch "
                  "milliseconds")


def add_commands(commands):
    """Add the client commands to `ddi-lite`'s sub-command parsers; each sets `handler`, the
    function that runs it: `args.handler(args)` is the exit code."""
    _add_operator_commands(commands)
    _add_tags_commands(commands)
    _add_filter_commands(commands)
    _add_rollout_commands(commands)
    _add_simulate_command(commands)


def _operator_command(function_name, module_name="commands"):
    """The handler of an operator command: client.<module_name>.<function_name>(args,
    client)."""
    def handler(args):
        import importlib
        from client import commands
        module = importlib.import_module("client." + module_name)
        return commands.run_operator_command(args, getattr(module, function_name))
    return handler


def _simulate(args):
    from client import simulator
    return simulator.simulate(args)


def operator_options():
    """--url, --user, --password and --json, accepted before or after the command words."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("server connection (operator commands)")
    group.add_argument("--url", default=argparse.SUPPRESS,
                       help="the ddi-lite server (env DDI_LITE_URL; http://localhost:8080)")
    group.add_argument("--user", default=argparse.SUPPRESS,
                       help="operator name (env DDI_LITE_USER; admin)")
    group.add_argument("--password", default=argparse.SUPPRESS,
                       help="operator password (env DDI_LITE_PASSWORD; asked on a terminal)")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print the server's JSON documents instead of tables")
    return options


ENVIRONMENT = """\
environment:
  DDI_LITE_URL       the server, when there is no --url (else http://localhost:8080)
  DDI_LITE_USER      the operator, when there is no --user (else admin)
  DDI_LITE_PASSWORD  the password, when there is no --password (else asked on a terminal)
"""


def _paragraph(text):
    return textwrap.fill(text, 78, initial_indent="  ", subsequent_indent="    ") + "\n"


def _query_help(fields, *values):
    """An epilog section on --query: the fields it may name, the values of some, the
    operators."""
    return ("--query RSQL:\n" + _paragraph("fields: " + ", ".join(fields))
            + "".join(_paragraph(text) for text in values) + _paragraph(RSQL_OPERATORS))


def _epilog(examples, *sections, environment=ENVIRONMENT):
    """A command's --help ends with examples (command lines, and comments on them), then
    `sections`, then the environment variables it reads."""
    return "examples:\n" + "".join("  %s\n" % line for line in examples) \
        + "".join("\n" + section for section in sections) \
        + ("\n" + environment if environment else "")


def _command_makers(commands, options, module_name="commands"):
    """command(parent, name, function_name, summary, examples, *sections): a command that
    runs client.<module_name>.<function_name>; group(name, summary, words, examples): a
    command word whose sub-commands are the real commands."""
    def command(parent, name, function_name, summary, examples, *sections):
        # Raw, so that the epilog keeps its lines; the description is wrapped here instead.
        parser = parent.add_parser(name, parents=[options], help=summary,
                                   description=textwrap.fill(summary, 78),
                                   epilog=_epilog(examples, *sections),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(handler=_operator_command(function_name, module_name))
        return parser

    def group(name, summary, words, examples):
        parser = commands.add_parser(name, parents=[options], help=summary,
                                     description=summary, epilog=_epilog(examples),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        return parser.add_subparsers(dest=name + "_command", metavar=words, required=True)
    return command, group


def _add_operator_commands(commands):
    options = operator_options()

    command, group = _command_makers(commands, options)

    targets = group("targets", "list, add, show or delete targets (devices)",
                    "{list,add,show,delete}", [
                        "ddi-lite targets list --query updateStatus==error",
                        'ddi-lite targets add board-7 --name "lab board 7"',
                        "ddi-lite targets show board-7",
                        "ddi-lite targets delete board-7",
                        "# each command has its own help: ddi-lite targets list --help"])
    parser = command(targets, "list", "targets_list", "list the targets", [
        "ddi-lite targets list",
        "ddi-lite targets list --query updateStatus==error",
        "ddi-lite targets list --query 'name==lab-*;installedDS.version!=2.1'",
        "# devices that missed their polls (the server fills in the time):",
        "ddi-lite targets list --query 'lastControllerRequestAt=le=${OVERDUE_TS}'",
        "ddi-lite targets list --query attribute.hw_revision==3 --json",
        "# the targets tagged line-3 (see ddi-lite tags), and those of them in error:",
        "ddi-lite targets list --tag line-3",
        "ddi-lite targets list --tag line-3 --query updateStatus==error",
        "ddi-lite targets list --query type.key==gateway"],
        _query_help(TARGET_QUERY_FIELDS, "updateStatus: " + ", ".join(TARGET_UPDATE_STATUSES),
                    "tag means tag.name, type and targetType mean type.key (the target "
                    "type)",
                    "${NOW_TS} and ${OVERDUE_TS} in a value are now and now minus the polling "
                    "and overdue times, in epoch milliseconds"))
    parser.add_argument("--query", metavar="RSQL",
                        help='only the targets that match, e.g. "name==lab-*"')
    parser.add_argument("--tag", metavar="NAME",
                        help="only the targets with this target tag (with --query: both)")
    parser = command(targets, "add", "targets_add",
                     "create a target and print its security token", [
                         "ddi-lite targets add board-7",
                         'TOKEN=$(ddi-lite targets add board-7 --name "lab board 7")',
                         "ddi-lite targets add board-8 --token 5b2f8e1c0d9a4e67"])
    parser.add_argument("controller_id", metavar="ID")
    parser.add_argument("--name", help="display name (default: the ID)")
    parser.add_argument("--token", help="security token (default: a random one)")
    parser = command(targets, "show", "targets_show",
                     "show a target, its type, tags and attributes and its assigned and "
                     "installed sets", [
                         "ddi-lite targets show board-7",
                         "ddi-lite targets show board-7 --json"])
    parser.add_argument("controller_id", metavar="ID")
    parser = command(targets, "delete", "targets_delete", "delete a target and its actions",
                     ["ddi-lite targets delete board-7"])
    parser.add_argument("controller_id", metavar="ID")

    parser = command(commands, "upload", "upload",
                     "ddi-lite upload files as one software module in a new distribution set; "
                     "print the set's id", [
                         "ddi-lite upload gateway-os-2.1.swu --name gateway-os --version 2.1",
                         "SET=$(ddi-lite upload web-ui.tar --name web-ui --version 1.4 "
                         "--type application)",
                         "ddi-lite upload bundle.raucb bundle.raucb.sig --name rootfs --version 7 "
                         "--json"])
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--name", required=True, help="name of the module and the set")
    parser.add_argument("--version", required=True, help="version of the module and the set")
    parser.add_argument("--type", default="os", metavar="KEY",
                        help="software module type: os (default) or application")
    parser.add_argument("--set-type", metavar="KEY",
                        help="distribution set type (default: os for os, app for application)")

    parser = command(commands, "assign", "assign",
                     "ddi-lite assign a distribution set to targets; print the new actions", [
                         "ddi-lite assign 5 board-7 board-8",
                         "ddi-lite assign 5 board-7 --type soft",
                         "ddi-lite assign 5 board-7 --type timeforced --forcetime 1767225600000",
                         "ACTION=$(ddi-lite assign 5 board-7 | awk '$1 == \"board-7\" "
                         "{ print $2 }')"])
    parser.add_argument("set", type=int, metavar="SET")
    parser.add_argument("targets", nargs="+", metavar="TARGET")
    parser.add_argument("--type", default="forced",
                        choices=("forced", "soft", "downloadonly", "timeforced"),
                        help="how the device should install it (default: forced)")
    parser.add_argument("--forcetime", type=int, metavar="EPOCH_MS",
                        help="with --type timeforced: when the update becomes forced")

    parser = command(commands, "actions", "actions",
                     "list a target's actions (all targets' without TARGET), newest first, "
                     "with their last status message; with ACTION, show that action and its "
                     "whole status history, oldest first", [
                         "ddi-lite actions board-7",
                         "ddi-lite actions board-7 12",
                         "ddi-lite actions board-7 12 --json",
                         "ddi-lite actions --query status==error",
                         "ddi-lite actions --query "
                         "'active==true;distributionSet.name==gateway-os'",
                         "# the devices that failed in a rollout:",
                         "ddi-lite actions --query 'rollout.name==fw-2.1;status==error'"],
                     _query_help(ACTION_QUERY_FIELDS, "status: " + ", ".join(ACTION_STATUSES),
                                 "active: true, false"))
    parser.add_argument("controller_id", nargs="?", metavar="TARGET",
                        help="the target's controller id")
    parser.add_argument("action", nargs="?", type=int, metavar="ACTION",
                        help="an action id of that target")
    parser.add_argument("--query", metavar="RSQL",
                        help='only the actions that match, e.g. "status==error"')

    command(commands, "gateway", "gateway",
            "show a gateway-mode server's upstream health, outbox and artifact cache", [
                "ddi-lite gateway --url http://ship-gateway:8080",
                "ddi-lite gateway --json"])

    parser = command(commands, "cancel", "cancel",
                     "ddi-lite cancel an action (the device confirms); --force closes it at once", [
                         "ddi-lite cancel board-7 12",
                         "ddi-lite cancel board-7 12 --force"])
    parser.add_argument("controller_id", metavar="TARGET")
    parser.add_argument("action", type=int, metavar="ACTION")
    parser.add_argument("--force", action="store_true",
                        help="force-quit without the device (cancels first when needed)")

    modules = group("modules", "list, show or delete software modules", "{list,show,delete}", [
        "ddi-lite modules list --query name==gateway-os",
        "ddi-lite modules show 7",
        "ddi-lite modules delete 7"])
    parser = command(modules, "list", "modules_list",
                     "list the software modules (not those marked deleted)", [
                         "ddi-lite modules list",
                         "ddi-lite modules list --query 'name==gateway-os;version==2.*'",
                         "ddi-lite modules list --query type==application --json"],
                     _query_help(MODULE_QUERY_FIELDS, "type: os, application, or any other "
                                 "module type key (type means type.key)"))
    parser.add_argument("--query", metavar="RSQL",
                        help='only the modules that match, e.g. "name==demo;version==1.*"')
    parser = command(modules, "show", "modules_show",
                     "show a software module, its artifacts and the sets that hold it",
                     ["ddi-lite modules show 7", "ddi-lite modules show 7 --json"])
    parser.add_argument("id", type=int, metavar="ID")
    parser = command(modules, "delete", "modules_delete",
                     "delete a software module and its artifacts; one that a set still holds "
                     "is only marked deleted, and one in an assigned (locked) set is refused", [
                         "ddi-lite modules delete 7",
                         "# a module of an assigned set: the set first, then the module",
                         "ddi-lite sets delete 5 && ddi-lite modules delete 7"])
    parser.add_argument("id", type=int, metavar="ID")

    sets = group("sets", "list, show or delete distribution sets", "{list,show,delete}", [
        "ddi-lite sets list --query name==gateway-os",
        "ddi-lite sets show 5",
        "ddi-lite sets delete 5"])
    parser = command(sets, "list", "sets_list",
                     "list the distribution sets (not those marked deleted)", [
                         "ddi-lite sets list",
                         "ddi-lite sets list --query name==gateway-os",
                         "ddi-lite sets list --query module.id==7 --json"],
                     _query_help(SET_QUERY_FIELDS, "type: os, app, os_app, or any other set "
                                 "type key (type means type.key); tag means tag.name"))
    parser.add_argument("--query", metavar="RSQL",
                        help='only the sets that match, e.g. "name==demo"')
    parser = command(sets, "show", "sets_show",
                     "show a distribution set, its modules and how many targets have it "
                     "assigned and installed",
                     ["ddi-lite sets show 5", "ddi-lite sets show 5 --json"])
    parser.add_argument("id", type=int, metavar="ID")
    parser = command(sets, "delete", "sets_delete",
                     "delete a distribution set (not its modules); one that actions or targets "
                     "still refer to is only marked deleted", ["ddi-lite sets delete 5"])
    parser.add_argument("id", type=int, metavar="ID")

    config = group("config", "read or change the server's tenant configuration", "{get,set}", [
        "ddi-lite config get",
        "ddi-lite config get pollingTime",
        "ddi-lite config set pollingTime 00:05:00"])
    parser = command(config, "get", "config_get", "print one configuration value, or all", [
        "ddi-lite config get",
        "ddi-lite config get pollingTime",
        "ddi-lite config get --json"])
    parser.add_argument("key", nargs="?", metavar="KEY")
    parser = command(config, "set", "config_set",
                     "change a configuration value (JSON such as true or 30, else text)", [
                         "ddi-lite config set pollingTime 00:05:00",
                         "ddi-lite config set authentication.gatewaytoken.enabled true",
                         "ddi-lite config set authentication.gatewaytoken.key 9f2c1d7e"])
    parser.add_argument("key", metavar="KEY")
    parser.add_argument("value", metavar="VALUE")


def _add_filter_commands(commands):
    """`ddi-lite filters ...`: target filters and the sets they auto-assign."""
    command, group = _command_makers(commands, operator_options())
    filters = group("filters", "list, show, create or delete target filters (saved target "
                    "queries), and the distribution sets they auto-assign",
                    "{list,show,create,delete,auto-assign,no-auto-assign}", [
                        "ddi-lite filters create nightly 'attribute.channel==nightly'",
                        "ddi-lite filters auto-assign 3 5",
                        "ddi-lite filters list",
                        "ddi-lite filters show 3",
                        "# each command has its own help: ddi-lite filters auto-assign --help"])
    parser = command(filters, "list", "filters_list",
                     "list the target filters with the set each auto-assigns", [
                         "ddi-lite filters list",
                         "ddi-lite filters list --query 'name==line-*'",
                         "ddi-lite filters list --query autoAssignDistributionSet.name==gw-os "
                         "--json"],
                     _query_help(FILTER_QUERY_FIELDS))
    parser.add_argument("--query", metavar="RSQL",
                        help='only the filters that match, e.g. "name==line-*"')
    parser = command(filters, "show", "filters_show",
                     "show a target filter, how many targets it matches now, and the set it "
                     "auto-assigns", ["ddi-lite filters show 3", "ddi-lite filters show 3 --json"])
    parser.add_argument("id", type=int, metavar="ID")
    parser = command(filters, "create", "filters_create",
                     "create a target filter from a target query; print its id", [
                         "ddi-lite filters create nightly 'attribute.channel==nightly'",
                         "FILTER=$(ddi-lite filters create line-2 'name==line2-*;group==west')",
                         "# which targets it matches: the same query for the target list",
                         "ddi-lite targets list --query 'name==line2-*;group==west'"],
                     "QUERY is a target query, as `targets list --query` takes:\n"
                     + _paragraph("fields: " + ", ".join(TARGET_QUERY_FIELDS))
                     + _paragraph(RSQL_OPERATORS))
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("query", metavar="QUERY")
    parser = command(filters, "delete", "filters_delete",
                     "delete a target filter (the actions it created stay)",
                     ["ddi-lite filters delete 3"])
    parser.add_argument("id", type=int, metavar="ID")
    parser = command(filters, "auto-assign", "filters_auto_assign",
                     "auto-assign a distribution set: the server assigns it to every target the "
                     "filter matches, now and whenever a target registers or changes, except "
                     "targets that ever had an action for that set", [
                         "ddi-lite filters auto-assign 3 5",
                         "ddi-lite filters auto-assign 3 5 --type soft --weight 200",
                         "ddi-lite filters auto-assign 3 5 --type downloadonly "
                         "--no-confirmation-required"])
    parser.add_argument("id", type=int, metavar="ID", help="the target filter")
    parser.add_argument("set", type=int, metavar="SET", help="the distribution set")
    parser.add_argument("--type", default="forced", choices=("forced", "soft", "downloadonly"),
                        help="how the devices should install it (default: forced)")
    parser.add_argument("--weight", type=int, metavar="0..1000",
                        help="the weight of the actions (default: 1000)")
    confirmation = parser.add_mutually_exclusive_group()
    confirmation.add_argument("--confirmation-required", dest="confirmation_required",
                              action="store_true", default=None,
                              help="the devices must confirm (with the confirmation flow on; "
                                   "default: whether the flow is on)")
    confirmation.add_argument("--no-confirmation-required", dest="confirmation_required",
                              action="store_false", help="no confirmation asked")
    parser = command(filters, "no-auto-assign", "filters_no_auto_assign",
                     "stop a target filter's auto-assignment (the actions it created stay)",
                     ["ddi-lite filters no-auto-assign 3"])
    parser.add_argument("id", type=int, metavar="ID")


# --- ddi-lite tags ---------------------------------------------------------------------------

def _add_tags_commands(commands):
    """`tags list|create|delete|assign|unassign`: target tags, or with --sets the tags of
    distribution sets. A tag is named by its name, as operators know it."""
    options = operator_options()
    command, group = _command_makers(commands, options)
    tags = group("tags", "manage target tags (with --sets: distribution set tags)",
                 "{list,create,delete,assign,unassign}", [
                     "ddi-lite tags create line-3 --colour '#ff0000'",
                     "ddi-lite tags assign line-3 board-7 board-8",
                     "ddi-lite targets list --tag line-3",
                     "ddi-lite tags list --sets",
                     "# each command has its own help: ddi-lite tags assign --help"])

    def tags_command(name, summary, examples, *sections):
        parser = command(tags, name, "tags_" + name, summary, examples, *sections)
        parser.add_argument("--sets", action="store_true",
                            help="distribution set tags instead of target tags")
        return parser

    parser = tags_command("list", "list the tags with how many targets (sets) carry each", [
        "ddi-lite tags list",
        "ddi-lite tags list --query 'name==line-*'",
        "ddi-lite tags list --sets --json"], _query_help(TAG_QUERY_FIELDS))
    parser.add_argument("--query", metavar="RSQL",
                        help='only the tags that match, e.g. "name==line-*"')
    parser = tags_command("create", "create a tag and print its id", [
        "ddi-lite tags create line-3",
        "ddi-lite tags create line-3 --description 'production line 3' --colour '#ff0000'",
        "ddi-lite tags create stable --sets"])
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--description", help="free text")
    parser.add_argument("--colour", help="a colour for user interfaces, e.g. #ff0000")
    parser = tags_command("delete", "delete a tag; what it was on loses it", [
        "ddi-lite tags delete line-3",
        "ddi-lite tags delete stable --sets"])
    parser.add_argument("name", metavar="NAME")
    parser = tags_command(
        "assign", "put a tag on targets (controller ids) or, with --sets, on distribution "
        "sets (ids); nothing changes when one of them is unknown", [
            "ddi-lite tags assign line-3 board-7 board-8",
            "ddi-lite tags assign stable 5 6 --sets"])
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("items", nargs="+", metavar="TARGET|SET")
    parser = tags_command(
        "unassign", "take a tag off targets or, with --sets, off distribution sets", [
            "ddi-lite tags unassign line-3 board-7",
            "ddi-lite tags unassign stable 5 --sets"])
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("items", nargs="+", metavar="TARGET|SET")


# --- ddi-lite rollouts -----------------------------------------------------------------------

def _percent(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a percentage, not %r" % text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100, not %s" % text)
    return int(value) if value.is_integer() else value


def _add_rollout_commands(commands):
    """`ddi-lite rollouts ...`: staged rollouts, in client.rollouts."""
    command, group = _command_makers(commands, operator_options(), "rollouts")
    rollouts = group(
        "rollouts", "create, watch and steer staged rollouts: a set sent to the targets of a "
        "query group by group, the next group starting when enough of the last succeeded, "
        "the rollout pausing when too many failed",
        "{create,list,show,start,pause,resume,approve,deny,stop,next-group,retry,delete}", [
            "ROLLOUT=$(ddi-lite rollouts create fw-2.1 5 'attribute.line==3' --groups 4)",
            "ddi-lite rollouts start $ROLLOUT",
            "ddi-lite rollouts show $ROLLOUT --watch",
            "ddi-lite rollouts resume $ROLLOUT",
            "# each command has its own help: ddi-lite rollouts create --help"])

    parser = command(rollouts, "create", "rollouts_create",
                     "create a rollout of distribution set SET to the targets that QUERY "
                     "matches, split into groups; print its id", [
                         "# four equal groups; the next starts when 50% of one finished, the "
                         "rollout pauses",
                         "# when more than 50% of one failed (the defaults):",
                         "ddi-lite rollouts create fw-2.1 5 'attribute.line==3' --groups 4",
                         "# a canary of 5%, then 25% of the rest, then all that is left; "
                         "pause above 10% failures:",
                         "ddi-lite rollouts create fw-2.1 5 'name==lab-*' --group 5 --group 25 "
                         "--group 100 \\",
                         "    --error-threshold 10 --success-threshold 90",
                         "# groups by query: line 1 first, then the rest",
                         "ddi-lite rollouts create fw-2.1 5 'name==*' --group 100:attribute.line==1 "
                         "--group 100 --start"],
                     "groups:\n" + _paragraph(
                         "--groups N splits the matching targets into N groups of (nearly) "
                         "equal size. --group PERCENT[:QUERY], repeated, makes one group each, "
                         "in order: it takes PERCENT of the matching targets (those QUERY also "
                         "matches, if given) not already in an earlier group; the last group "
                         "must take all that is left (100).")
                     + "\nQUERY is a target query, as `targets list --query` takes:\n"
                     + _paragraph("fields: " + ", ".join(TARGET_QUERY_FIELDS))
                     + _paragraph(RSQL_OPERATORS))
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("set", type=int, metavar="SET", help="the distribution set")
    parser.add_argument("query", metavar="QUERY", help="the targets, e.g. \"name==lab-*\"")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--groups", type=_whole_number(1, 500), default=1, metavar="N",
                       help="split into N equal groups (default: 1)")
    sizes.add_argument("--group", action="append", default=[], metavar="PERCENT[:QUERY]",
                       help="one group (repeat for each, in order)")
    parser.add_argument("--success-threshold", type=_percent, default=50, metavar="PERCENT",
                        help="start the next group once this share of a group finished "
                             "(default: 50)")
    parser.add_argument("--error-threshold", type=_percent, default=50, metavar="PERCENT",
                        help="pause the rollout once more than this share of a group failed "
                             "(default: 50)")
    parser.add_argument("--type", default="forced",
                        choices=("forced", "soft", "downloadonly", "timeforced"),
                        help="how the devices should install it (default: forced)")
    parser.add_argument("--forcetime", type=int, metavar="EPOCH_MS",
                        help="with --type timeforced: when the update becomes forced")
    parser.add_argument("--weight", type=_whole_number(0, 1000), metavar="0..1000",
                        help="the weight of its actions")
    parser.add_argument("--start-at", type=int, metavar="EPOCH_MS",
                        help="start by itself at this time")
    parser.add_argument("--description", help="free text")
    confirmation = parser.add_mutually_exclusive_group()
    confirmation.add_argument("--confirmation-required", dest="confirmation_required",
                              action="store_true", default=None,
                              help="the devices must confirm (with the confirmation flow on)")
    confirmation.add_argument("--no-confirmation-required", dest="confirmation_required",
                              action="store_false", help="no confirmation asked")
    parser.add_argument("--start", action="store_true",
                        help="start it as soon as its groups are made")

    parser = command(rollouts, "list", "rollouts_list",
                     "list the rollouts with their status and progress", [
                         "ddi-lite rollouts list",
                         "ddi-lite rollouts list --query status==paused",
                         "ddi-lite rollouts list --query distributionSet.name==gateway-os "
                         "--json"],
                     _query_help(ROLLOUT_QUERY_FIELDS,
                                 "status: " + ", ".join(ROLLOUT_STATUSES)))
    parser.add_argument("--query", metavar="RSQL",
                        help='only the rollouts that match, e.g. "status==running"')

    parser = command(rollouts, "show", "rollouts_show",
                     "show a rollout and a progress bar per group (# finished, x failed); "
                     "with --watch, redraw until it finishes (exit 0) or pauses, is stopped "
                     "or denied (exit 3)", [
                         "ddi-lite rollouts show 3",
                         "ddi-lite rollouts show 3 --watch",
                         "ddi-lite rollouts show 3 --watch --interval 10 || "
                         "echo 'rollout 3 needs you'"])
    parser.add_argument("id", type=int, metavar="ID")
    parser.add_argument("--watch", action="store_true",
                        help="redraw until the rollout finishes or stops moving")
    parser.add_argument("--interval", type=_number(0, 3600, low_open=True), default=2.0,
                        metavar="SECONDS", help="with --watch: how often (default: 2)")

    for name, summary, examples in (
            ("start", "start a rollout: its first group's devices get the update on their "
                      "next poll", ["ddi-lite rollouts start 3"]),
            ("pause", "pause a running rollout: no further group starts (devices already "
                      "updating go on)", ["ddi-lite rollouts pause 3"]),
            ("resume", "resume a paused rollout", ["ddi-lite rollouts resume 3"]),
            ("stop", "stop a rollout for good: the actions of groups not yet started are "
                     "cancelled", ["ddi-lite rollouts stop 3"]),
            ("next-group", "start the next group now, whatever the thresholds say",
             ["ddi-lite rollouts next-group 3"]),
            ("retry", "create a new rollout of the same set for the targets that failed in "
                      "this one; print its id", ["ddi-lite rollouts retry 3"]),
            ("delete", "delete a rollout; one that has actions is only marked deleted",
             ["ddi-lite rollouts delete 3"])):
        parser = command(rollouts, name, "rollouts_" + name.replace("-", "_"), summary,
                         examples)
        parser.add_argument("id", type=int, metavar="ID")
    for name, summary in (
            ("approve", "approve a rollout that waits for approval (with the "
                        "rollout.approval.enabled configuration)"),
            ("deny", "deny a rollout that waits for approval")):
        parser = command(rollouts, name, "rollouts_" + name, summary, [
            "ddi-lite rollouts %s 3 --remark 'checked on the lab line'" % name])
        parser.add_argument("id", type=int, metavar="ID")
        parser.add_argument("--remark", help="why, kept with the rollout")


# --- ddi-lite simulate ----------------------------------------------------------------------

def _whole_number(low, high):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a whole number, not %r" % text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("must be between %d and %d, not %d"
                                             % (low, high, value))
        return value
    return parse


def _number(low, high, low_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("must be a number, not %r" % text)
        if (value <= low if low_open else not low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(
                ("must be more than %g and at most %g, not %s" if low_open else
                 "must be between %g and %g, not %s") % (low, high, text))
        return value
    return parse


def _add_simulate_command(commands):
    summary = "play N virtual devices against a DDI server (this one or any hawkBit) and " \
              "print throughput and latency"
    parser = commands.add_parser(
        "simulate", help=summary, description=textwrap.fill(summary + ".", 78),
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_epilog([
            "ddi-lite simulate --url http://localhost:8080 --create-targets --devices 1000 \\",
            "    --poll-interval 5 --failure-rate 0.02 --configdata --stop-when-done",
            "ddi-lite simulate --url https://updates.example.com --token-file tokens.txt \\",
            "    --download ranges --duration 3600 --json",
            "ddi-lite simulate --url http://localhost:8080 --gateway-token 9f2c1d7e "
            "--devices 50"],
            environment="environment (with --create-targets):\n"
                        "  DDI_LITE_USER      the operator, when there is no --user "
                        "(else admin)\n"
                        "  DDI_LITE_PASSWORD  the password, when there is no --password "
                        "(else asked on a terminal)\n"))
    parser.set_defaults(handler=_simulate)
    server = parser.add_argument_group("server")
    server.add_argument("--url", required=True,
                        help="the server, http(s)://HOST:PORT[/PATH]; nothing else is contacted")
    server.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant (default: DEFAULT)")
    server.add_argument("--connections", type=_whole_number(1, 10000), default=64, metavar="N",
                        help="connections shared by all devices (default: 64)")
    server.add_argument("--timeout", type=_number(0, 3600, low_open=True), default=30.0,
                        metavar="SECONDS", help="longest wait for one answer (default: 30)")
    devices = parser.add_argument_group("devices (one of --token-file, --gateway-token, "
                                        "--create-targets)")
    devices.add_argument("--devices", type=_whole_number(1, 100000), metavar="N",
                         help="how many (default: 10, or every line of --token-file)")
    devices.add_argument("--prefix", help="controller ids PREFIX00001... (default: sim-)")
    credentials = devices.add_mutually_exclusive_group(required=True)
    credentials.add_argument("--token-file", metavar="FILE",
                             help="lines 'controllerId token': the devices and their tokens")
    credentials.add_argument("--gateway-token", metavar="TOKEN",
                             help="one gateway token for all; unknown devices register")
    credentials.add_argument("--create-targets", action="store_true",
                             help="create the targets (existing ones are reused) and read "
                                  "their tokens through the Management API")
    devices.add_argument("--user", help="with --create-targets (env DDI_LITE_USER; admin)")
    devices.add_argument("--password",
                         help="with --create-targets (env DDI_LITE_PASSWORD; asked on a "
                              "terminal)")
    behaviour = parser.add_argument_group("behaviour")
    behaviour.add_argument("--poll-interval", type=_number(0, 86400, low_open=True),
                           metavar="SECONDS",
                           help="poll this often instead of the server's sleep")
    behaviour.add_argument("--download", choices=("full", "ranges"), default="full",
                           help="whole artifacts (default) or Range requests")
    behaviour.add_argument("--range-size", type=_whole_number(1, 1 << 40), metavar="BYTES",
                           help="with --download ranges: bytes per request (default: 1 MiB)")
    behaviour.add_argument("--failure-rate", type=_number(0, 1), default=0.0,
                           metavar="0..1", help="share of installations reported as failed")
    behaviour.add_argument("--seed", type=_whole_number(0, 2 ** 63 - 1),
                           help="repeat a run's choices (default: random, shown in the summary)")
    behaviour.add_argument("--configdata", action="store_true",
                           help="upload attributes when the server asks for them")
    bounds = parser.add_argument_group("bounds and output")
    bounds.add_argument("--duration", type=_number(0, 7 * 86400, low_open=True), default=600.0,
                        metavar="SECONDS", help="stop after this long (default: 600)")
    bounds.add_argument("--max-requests", type=_whole_number(1, 10 ** 12), default=1000000,
                        metavar="N", help="stop before request N+1 (default: 1000000)")
    bounds.add_argument("--stop-when-done", action="store_true",
                        help="stop once every offered action is closed and a poll round "
                             "brought nothing new")
    bounds.add_argument("--json", action="store_true", help="print the summary as JSON")
