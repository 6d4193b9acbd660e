"""Collections: RSQL filtering, sorting and paging (storage.query) and request coercion
(storage.coerce), against a real SQLite database seeded once for the module."""

import time

import pytest

import storage
from storage import catalog, coerce, tenant
from storage.errors import BodyNotReadable, ConstraintViolation, StoreError
from storage.models import (Action, ActionStatus, DistributionSet, DistributionSetMetadata,
                            DistributionSetType, SoftwareModule, SoftwareModuleMetadata,
                            SoftwareModuleType, Target, TargetMetadata)
from storage.query import (COLLECTIONS, STAR, And, Argument, Comparison, Or, RsqlInvalidField,
                           RsqlSyntax, SortInvalidDirection, SortInvalidField, SortSyntax, clamp,
                           filter_expression, order_by, page, parse)

NOW = int(time.time() * 1000)
MINUTE = 60 * 1000


class World:
    """Ids of the seeded rows."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    storage.open_store(str(tmp_path_factory.mktemp("query")), NOW)
    w = World()
    w.os1 = catalog.create_module("os", "linux", "1.0", NOW, "admin", description="Kernel")
    w.app = catalog.create_module("application", "app", "2.1", NOW, "admin")
    w.os2 = catalog.create_module("os", "linux", "1.1", NOW, "admin", description="")
    SoftwareModuleMetadata.create(module=w.os1, key="sig", value="abc")
    w.fw1 = catalog.create_distribution_set("fw", "1.0", [w.os1.id, w.app.id], NOW, "admin")
    w.fw2 = catalog.create_distribution_set("fw", "2.0", [w.app.id], NOW, "admin")
    w.apps = catalog.create_distribution_set("apps", "1.0", [w.app.id], NOW, "admin",
                                             type_key="app")
    w.old = catalog.create_distribution_set("old", "0.1", [w.os2.id], NOW, "admin",
                                            type_key="os", description="outdated")
    DistributionSet.update(valid=False).where(DistributionSet.id == w.old.id).execute()
    DistributionSetMetadata.create(distribution_set=w.fw2, key="channel", value="Beta")

    rows = [
        ("dev-01", "Alpha Device", "lab unit", "http://192.168.0.10", "lab/eu", "IN_SYNC",
         {"hw": "Rev-A", "update_channel": "nightly", "a.b": "dotted", "\u00fc": "umlaut"},
         NOW - 1000, 1000, "admin", w.fw1, w.fw1),
        ("dev-02", "beta_device", None, "http://10.0.0.2", None, "PENDING",
         {"hw": "rev-b"}, NOW - 20 * MINUTE, 2000, "alice", w.fw2, w.fw1),
        ("DEV-03", "Gamma 100%", "", None, "lab/us", "UNKNOWN", {}, None, 3000, "admin",
         None, None),
        ("dev-04", "delta*star", "x_y", "http://10.0.0.4", "lab/eu", "ERROR",
         {"hw": "REV-A"}, NOW - 100 * 1000, 4000, "admin", w.apps, None),
        ("dev-10", "alpha device", "back\\slash", "http://10.0.0.10", "field", "REGISTERED",
         {}, NOW - 30 * 1000, 10000, "admin", None, None),
    ]
    w.targets = {}
    for (cid, name, description, address, group, status, attributes, polled, created, by,
         assigned, installed) in rows:
        target = catalog.create_target(cid, created, by, name=name, description=description,
                                       address=address, group=group)
        Target.update(update_status=status, attributes=attributes, last_target_query=polled,
                      assigned_ds=assigned, installed_ds=installed, last_modified_at=created + 5,
                      last_modified_by="bob" if cid == "dev-04" else by).where(
            Target.id == target.id).execute()
        w.targets[cid] = target
    TargetMetadata.create(target=w.targets["dev-01"], key="location", value="Lab-1")
    TargetMetadata.create(target=w.targets["dev-02"], key="location", value="lab-2")
    TargetMetadata.create(target=w.targets["dev-02"], key="owner", value="bob")
    TargetMetadata.create(target=w.targets["dev-04"], key="location", value=None)

    def action(cid, ds, kind, status, active, weight, code, created, by="admin"):
        return Action.create(target=w.targets[cid], distribution_set=ds, action_type=kind,
                             status=status, active=active, weight=weight, initiated_by=by,
                             last_status_code=code, created_at=created, created_by=by,
                             last_modified_at=created, last_modified_by=by).id

    w.a100 = action("dev-01", w.fw1, "FORCED", "FINISHED", False, None, 200, 100)
    w.a101 = action("dev-02", w.fw2, "SOFT", "RUNNING", True, 500, None, 200)
    w.a102 = action("dev-02", w.apps, "DOWNLOAD_ONLY", "WAIT_FOR_CONFIRMATION", True, 1000,
                    None, 300, by="bob")
    w.a103 = action("dev-04", w.apps, "TIMEFORCED", "CANCELED", False, 10, 404, 400)
    w.a104 = action("dev-01", w.fw1, "FORCED", "ERROR", False, None, None, 500)
    w.statuses = []
    for timestamp, reported, by in ((300, 10, "dev-02"), (100, 30, "admin"), (200, 20, "dev-02")):
        w.statuses.append(ActionStatus.create(action=w.a101, status="RUNNING",
                                              timestamp=timestamp, reported_at=reported,
                                              created_by=by, messages=[]).id)
    yield w
    storage.close_store()


def targets(q=None, sort=None, offset=None, limit=None, select=None):
    rows, _ = page(select or Target.select(), "targets", q=q, sort=sort, offset=offset,
                   limit=limit, now=NOW)
    return [row.controller_id for row in rows]


def ids(collection, q=None, sort=None, select=None):
    model = COLLECTIONS[collection].model
    rows, total = page(select or model.select(), collection, q=q, sort=sort, now=NOW)
    assert total == len(rows)
    return [row.id for row in rows]


def expect_error(error_class, code, call, *args, **kwargs):
    with pytest.raises(error_class) as caught:
        call(*args, **kwargs)
    assert caught.value.error_code == code
    assert isinstance(caught.value, StoreError)
    return caught.value


# ---------------------------------------------------------------------------------- parser


def cmp(selector, operator, *values):
    return Comparison(selector, operator, tuple(Argument([v]) for v in values))


def test_parse_and_binds_tighter_than_or():
    assert parse("a==1,b==2;c==3") == Or((cmp("a", "eq", "1"),
                                          And((cmp("b", "eq", "2"), cmp("c", "eq", "3")))))
    assert parse("a==1 and b==2 or c==3") == Or((And((cmp("a", "eq", "1"),
                                                      cmp("b", "eq", "2"))),
                                                 cmp("c", "eq", "3")))
    assert parse("a==1 AND b==2 Or c==3") == parse("a==1;b==2,c==3")


def test_parse_parentheses_group_first():
    assert parse("(a==1,b==2);c==3") == And((Or((cmp("a", "eq", "1"), cmp("b", "eq", "2"))),
                                             cmp("c", "eq", "3")))
    assert parse(" ( ( a==1 ) ) ") == cmp("a", "eq", "1")


@pytest.mark.parametrize("text,operator", [
    ("==", "eq"), ("=eq=", "eq"), ("=is=", "is"), ("!=", "ne"), ("=ne=", "ne"),
    ("=not=", "not"), ("=lt=", "lt"), ("<", "lt"), ("=le=", "le"), ("<=", "le"),
    ("=gt=", "gt"), (">", "gt"), ("=ge=", "ge"), (">=", "ge"), ("=in=", "in"),
    ("=out=", "out"), ("=IN=", "in"),
])
def test_parse_operators(text, operator):
    assert parse("x%s5" % text) == cmp("x", operator, "5")


def test_parse_quoting_and_escapes():
    assert parse('name=="a b;c,d"').arguments == (Argument(["a b;c,d"], quoted=True),)
    assert parse("name=='it\\'s'").arguments == (Argument(["it's"], quoted=True),)
    assert parse('name=="say \\"hi\\""').arguments == (Argument(['say "hi"'], quoted=True),)
    assert parse("name==a*b").arguments == (Argument(["a", STAR, "b"]),)
    assert parse("name==a\\*b").arguments == (Argument(["a*b"]),)
    assert parse('name=="a\\*b*"').arguments == (Argument(["a*b", STAR], quoted=True),)
    assert parse("name==c:\\dir").arguments == (Argument(["c:\\dir"]),)
    assert parse('name==""').arguments == (Argument([""], quoted=True),)
    assert parse("x=in=(a, 'b c' ,d)").arguments == (
        Argument(["a"]), Argument(["b c"], quoted=True), Argument(["d"]))


def test_parse_empty_is_none():
    assert parse(None) is None
    assert parse("   ") is None
    assert filter_expression("targets", "") is None


@pytest.mark.parametrize("q", [
    "name", "name==", "name==a;", "(name==a", "name==a)", "name=foo=a", "name=li=a",
    "name==(a,b)", "name=in=(a,", "name=in=()", 'name=="abc', "==a", "name==a b", "a==1;;b==2",
    "a==1 and", ")", "name~=a", "a==1 android==2", "a==1 orb==2", "name=!a",
    "(" * 100 + "a==1" + ")" * 100,
])
def test_syntax_errors(world, q):
    error = expect_error(RsqlSyntax, "hawkbit.server.error.rest.param.rsqlParamSyntax",
                         filter_expression, "targets", q)
    assert error.exception_class == ("org.eclipse.hawkbit.repository.exception."
                                     "RSQLParameterSyntaxException")


# ---------------------------------------------------------------------- target filtering


@pytest.mark.parametrize("q,expected", [
    ('name=="alpha device"', ["dev-01", "dev-10"]),
    ('NAME=="ALPHA DEVICE"', ["dev-01", "dev-10"]),
    ("controllerId==dev-03", ["DEV-03"]),
    ("id==DEV-01", ["dev-01"]),
    ('name!="alpha device"', ["dev-02", "DEV-03", "dev-04"]),
    ("name=eq=beta_device", ["dev-02"]),
    ("name=ne=beta_device", ["dev-01", "DEV-03", "dev-04", "dev-10"]),
    ("name=is=beta_device", ["dev-02"]),
    ("name=not=beta_device", ["dev-01", "DEV-03", "dev-04", "dev-10"]),
    ("createdBy==ALICE", ["dev-02"]),
    ("lastModifiedBy==bob", ["dev-04"]),
    ("lastModifiedAt==4005", ["dev-04"]),
])
def test_equality_is_case_insensitive(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ("name==*device", ["dev-01", "dev-02", "dev-10"]),
    ("name==alpha*", ["dev-01", "dev-10"]),
    ("name==ALPHA*", ["dev-01", "dev-10"]),
    ("name==*_*", ["dev-02"]),          # '_' is literal, not LIKE's any-character
    ("name==*%*", ["DEV-03"]),          # '%' is literal
    ("name==*100%", ["DEV-03"]),
    ("name==delta\\*star", ["dev-04"]),
    ("name==delta\\*s*", ["dev-04"]),
    ('name=="delta\\*star"', ["dev-04"]),
    ("name==d\\*lta*", []),
    ("name==*", ["dev-01", "dev-02", "DEV-03", "dev-04", "dev-10"]),
    ("description==back\\slash", ["dev-10"]),
    ("description==back\\sl*", ["dev-10"]),  # backslash is literal inside LIKE too
    ("description==x_*", ["dev-04"]),
    ("description==x?y", []),
    ("name!=*device", ["DEV-03", "dev-04"]),
    ("description!=lab*", ["dev-02", "DEV-03", "dev-04", "dev-10"]),
    ("ipAddress==*10.0.0.*", ["dev-02", "dev-04", "dev-10"]),
    ('ipAddress=="http://192.168.0.10"', ["dev-01"]),
    ("group==lab/*", ["dev-01", "DEV-03", "dev-04"]),
])
def test_wildcards(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ('description==""', ["dev-02", "DEV-03"]),
    ("description==''", ["dev-02", "DEV-03"]),
    ('description!=""', ["dev-01", "dev-04", "dev-10"]),
    ("description=is=null", ["dev-02"]),
    ("description=is=NULL", ["dev-02"]),
    ("description=not=null", ["dev-01", "DEV-03", "dev-04", "dev-10"]),
    ('description=is="null"', []),      # quoted: the word, not null
    ("group=is=null", ["dev-02"]),
    ("lastControllerRequestAt=is=null", ["DEV-03"]),
    ('lastControllerRequestAt==""', ["DEV-03"]),
    ("lastControllerRequestAt=not=null", ["dev-01", "dev-02", "dev-04", "dev-10"]),
])
def test_null_and_empty(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ("controllerId=in=(dev-01,DEV-04)", ["dev-01", "dev-04"]),
    ("controllerId=in=dev-01", ["dev-01"]),
    ("updateStatus=in=(in_sync,PENDING)", ["dev-01", "dev-02"]),
    ("updateStatus=out=(in_sync,pending)", ["DEV-03", "dev-04", "dev-10"]),
    ("group=out=(lab/eu)", ["dev-02", "DEV-03", "dev-10"]),  # null group is "not in"
    ("createdAt=in=(1000,3000)", ["dev-01", "DEV-03"]),
    ("createdAt=out=(1000,3000)", ["dev-02", "dev-04", "dev-10"]),
    ("name=in=(alpha*)", []),           # no wildcards in lists
])
def test_in_and_out(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ("name=lt=b", ["dev-01", "dev-10"]),
    ("name=ge=DELTA", ["DEV-03", "dev-04"]),
    ("name=gt=beta_device", ["DEV-03", "dev-04"]),
    ("name<=beta_device", ["dev-01", "dev-02", "dev-10"]),
    ("createdAt=gt=2000", ["DEV-03", "dev-04", "dev-10"]),
    ("createdAt>=2000", ["dev-02", "DEV-03", "dev-04", "dev-10"]),
    ("createdAt<2000", ["dev-01"]),
    ("createdAt<=2000", ["dev-01", "dev-02"]),
    ("createdAt=le=2000", ["dev-01", "dev-02"]),
    ("createdAt>9000", ["dev-10"]),     # numeric: 10000 > 9000 although "10000" < "9000"
    ("createdAt==3000", ["DEV-03"]),
    ("createdAt!=3000", ["dev-01", "dev-02", "dev-04", "dev-10"]),
    ("createdAt==+3000", ["DEV-03"]),
])
def test_ordering_and_numbers(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q", ["createdAt==abc", "createdAt==1*", "createdAt=gt=1.5",
                               "lastControllerRequestAt<${SOON}"])
def test_bad_numbers_are_syntax_errors(world, q):
    expect_error(RsqlSyntax, "hawkbit.server.error.rest.param.rsqlParamSyntax", targets, q)


@pytest.mark.parametrize("q,expected", [
    ("updateStatus==IN_SYNC", ["dev-01"]),
    ("updateStatus==in_sync", ["dev-01"]),
    ("updatestatus==In_Sync", ["dev-01"]),
    ("updateStatus==registered", ["dev-10"]),
    ("updateStatus==nonsense", []),
])
def test_enum_values_any_case(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ("name==beta_device,name==gamma*;updateStatus==unknown", ["dev-02", "DEV-03"]),
    ("(name==beta_device,name==gamma*);updateStatus==pending", ["dev-02"]),
    ("name==beta_device or name==gamma* and updateStatus==pending", ["dev-02"]),
    ("(name==beta_device or name==gamma*) and updateStatus==unknown", ["DEV-03"]),
    ("name==alpha*;createdAt>1000", ["dev-10"]),
    ("name==alpha*;(createdAt>5000,group==lab/eu)", ["dev-01", "dev-10"]),
])
def test_precedence_in_results(world, q, expected):
    assert targets(q) == expected


def test_long_or_chain(world):
    q = ",".join("controllerId==x%d" % n for n in range(600)) + ",controllerId==dev-04"
    assert targets(q) == ["dev-04"]


@pytest.mark.parametrize("q,expected", [
    ("attribute.hw==rev-a", ["dev-01", "dev-04"]),
    ("attribute.hw==rev*", ["dev-01", "dev-02", "dev-04"]),
    ("attribute.hw!=rev-a", ["dev-02", "DEV-03", "dev-10"]),  # missing key counts as "not"
    ('attribute.hw==""', ["DEV-03", "dev-10"]),
    ("attribute.hw=is=null", ["DEV-03", "dev-10"]),
    ("attribute.hw=not=null", ["dev-01", "dev-02", "dev-04"]),
    ("attribute.update_channel=in=(Nightly,stable)", ["dev-01"]),
    ("attribute.update_channel==night_y", []),
    ("attribute.a.b==dotted", ["dev-01"]),       # the key is everything after the first dot
    ("ATTRIBUTE.hw==REV-B", ["dev-02"]),
    ("attribute.\u00fc==UMLAUT", ["dev-01"]),    # non-ASCII key (stored \u-escaped)
    ("attribute.\u00fc!=umlaut", ["dev-02", "DEV-03", "dev-04", "dev-10"]),
    ("attribute.\u00fc==uml*", ["dev-01"]),
    ("attribute.missing==x", []),
])
def test_attribute_fields(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ("metadata.location==LAB-1", ["dev-01"]),
    ("metadata.location==lab*", ["dev-01", "dev-02"]),
    ("metadata.location!=lab-1", ["dev-02", "DEV-03", "dev-04", "dev-10"]),
    ('metadata.location==""', ["DEV-03", "dev-04", "dev-10"]),
    ("metadata.location=not=null", ["dev-01", "dev-02"]),
    ("metadata.location=is=null", ["DEV-03", "dev-04", "dev-10"]),
    ("metadata.owner=in=(BOB,carol)", ["dev-02"]),
    ("metadata.owner=out=(bob)", ["dev-01", "DEV-03", "dev-04", "dev-10"]),
    ("MetaData.owner==bob", ["dev-02"]),
    ("metadata.location=gt=lab-1", ["dev-02"]),
])
def test_metadata_fields(world, q, expected):
    assert targets(q) == expected


@pytest.mark.parametrize("q,expected", [
    ("assignedDS.name==fw", ["dev-01", "dev-02"]),
    ("assignedds.VERSION==2.0", ["dev-02"]),
    ("assignedDS.name!=fw", ["DEV-03", "dev-04", "dev-10"]),
    ("installedDS.name==FW", ["dev-01", "dev-02"]),
    ('installedDS.version==""', ["DEV-03", "dev-04", "dev-10"]),
    ("assignedDS.name==app*", ["dev-04"]),
])
def test_distribution_set_fields_of_targets(world, q, expected):
    assert targets(q) == expected


def test_placeholders(world):
    assert targets("lastControllerRequestAt=le=${OVERDUE_TS}") == ["dev-02"]
    assert targets("lastControllerRequestAt=lt=${NOW_TS}") == [
        "dev-01", "dev-02", "dev-04", "dev-10"]
    assert targets("createdAt=gt=${NOW_TS}") == []
    tenant.store({"pollingTime": "00:00:30", "pollingOverdueTime": "00:00:30"}, "test")
    try:
        assert targets("lastControllerRequestAt=le=${OVERDUE_TS}") == ["dev-02", "dev-04"]
    finally:
        tenant.reset("pollingTime")
        tenant.reset("pollingOverdueTime")
    assert targets("lastControllerRequestAt<${OVERDUE_TS}") == ["dev-02"]


@pytest.mark.parametrize("collection,q", [
    ("targets", "foo==1"),
    ("targets", "tag.colour==x"),
    ("targets", "type.colour==x"),
    ("targets", "assignedDS==fw"),
    ("targets", "installedDS==fw"),
    ("targets", "assignedDS.foo==fw"),
    ("targets", "attribute==x"),
    ("targets", "metadata==x"),
    ("targets", "controllerAttributes.hw==x"),
    ("actions", "target==dev-01"),
    ("actions", "distributionSet==1"),
    ("actions", "rollout==1"),
    ("actions", "rolloutGroup.status==x"),
    ("actions", "attribute.hw==x"),
    ("distributionsets", "module==x"),
    ("distributionsets", "tag.id==1"),
    ("softwaremodules", "module.id==1"),
    ("softwaremoduletypes", "maxassignments.x==1"),
    ("distributionsettypes", "maxAssignments==1"),
])
def test_invalid_fields(world, collection, q):
    error = expect_error(RsqlInvalidField, "hawkbit.server.error.rest.param.rsqlInvalidField",
                         filter_expression, collection, q)
    assert error.exception_class == ("org.eclipse.hawkbit.repository.exception."
                                     "RSQLParameterUnsupportedFieldException")
    assert q.split("=")[0].split(".")[0].lower() in error.message.lower()


# ---------------------------------------------------------------------- other collections


def test_action_fields(world):
    w = world
    assert ids("actions", "status==running") == [w.a101]
    assert ids("actions", "status==pending") == [w.a102, w.a101]        # active, legacy
    assert ids("actions", "status!=PENDING") == [w.a104, w.a103, w.a100]
    assert ids("actions", "status=in=(pending,error)") == [w.a104, w.a102, w.a101]
    assert ids("actions", "status=out=(pending,error)") == [w.a103, w.a100]
    assert ids("actions", "detailStatus==canceled") == [w.a103]
    assert ids("actions", "status==wait_for_confirmation") == [w.a102]
    assert ids("actions", "status==FIN*") == [w.a100]
    assert ids("actions", "active==true") == [w.a102, w.a101]
    assert ids("actions", "active==FALSE") == [w.a104, w.a103, w.a100]
    assert ids("actions", "active!=true") == [w.a104, w.a103, w.a100]
    assert ids("actions", "weight==1000") == [w.a104, w.a102, w.a100]   # unset weight = 1000
    assert ids("actions", "weight=lt=600") == [w.a103, w.a101]
    assert ids("actions", "lastStatusCode==200") == [w.a100]
    assert ids("actions", "lastStatusCode=is=null") == [w.a104, w.a102, w.a101]
    assert ids("actions", "lastStatusCode=ge=300") == [w.a103]
    assert ids("actions", "target.controllerId==DEV-02") == [w.a102, w.a101]
    assert ids("actions", "target.name==alpha*") == [w.a104, w.a100]
    assert ids("actions", "target.updateStatus==error") == [w.a103]
    assert ids("actions", "target.address==*10.0.0.4") == [w.a103]
    assert ids("actions", "distributionSet.id==%d" % w.fw1.id) == [w.a104, w.a100]
    assert ids("actions", "distributionSet.name==APPS") == [w.a103, w.a102]
    assert ids("actions", "distributionSet.version==2.0") == [w.a101]
    assert ids("actions", "distributionSet.type==app") == [w.a103, w.a102]
    assert ids("actions", "distributionSet.type==os_app") == [w.a104, w.a101, w.a100]
    assert ids("actions", "id=in=(%d,%d)" % (w.a100, w.a103)) == [w.a103, w.a100]
    assert ids("actions", "createdBy==bob;createdAt=ge=300") == [w.a102]


def test_action_value_errors(world):
    for q in ("active==yes", "id==abc", "weight==heavy"):
        expect_error(RsqlSyntax, "hawkbit.server.error.rest.param.rsqlParamSyntax",
                     ids, "actions", q)


def test_action_page_within_caller_restriction(world):
    target = world.targets["dev-02"]
    rows, total = page(Action.select().where(Action.target == target), "actions",
                       q="status==pending", now=NOW)
    assert [row.id for row in rows] == [world.a102, world.a101] and total == 2
    rows, total = page(Action.select().where(Action.target == target), "actions",
                       q="status==running")
    assert [row.id for row in rows] == [world.a101] and total == 1


def test_software_module_fields(world):
    w = world
    assert ids("softwaremodules", "type==os") == [w.os1.id, w.os2.id]
    assert ids("softwaremodules", "type.key==OS") == [w.os1.id, w.os2.id]
    assert ids("softwaremodules", "type.name==Application") == [w.app.id]
    assert ids("softwaremodules", "type.id==%d" % w.app.module_type_id) == [w.app.id]
    assert ids("softwaremodules", "name==linux;version==1.1") == [w.os2.id]
    assert ids("softwaremodules", "metadata.sig==ABC") == [w.os1.id]
    assert ids("softwaremodules", 'description==""') == [w.app.id, w.os2.id]
    assert ids("softwaremodules", "description==kern*") == [w.os1.id]
    assert ids("softwaremodules", "id>%d" % w.os1.id) == [w.app.id, w.os2.id]
    assert ids("softwaremodules", "createdBy==admin;lastModifiedBy==admin") == [
        w.os1.id, w.app.id, w.os2.id]


def test_distribution_set_fields(world):
    w = world
    assert ids("distributionsets", "module.name==linux") == [w.fw1.id, w.old.id]
    assert ids("distributionsets", "module.id==%d" % w.app.id) == [w.fw1.id, w.fw2.id,
                                                                   w.apps.id]
    assert ids("distributionsets", "module.name!=LINUX") == [w.fw2.id, w.apps.id]
    assert ids("distributionsets", "module.name=in=(app,nothing)") == [w.fw1.id, w.fw2.id,
                                                                       w.apps.id]
    assert ids("distributionsets", "complete==false") == [w.fw2.id]
    assert ids("distributionsets", "complete==true") == [w.fw1.id, w.apps.id, w.old.id]
    assert ids("distributionsets", "valid==false") == [w.old.id]
    assert ids("distributionsets", "type==os_app") == [w.fw1.id, w.fw2.id]
    assert ids("distributionsets", 'type.name=="OS only"') == [w.old.id]
    assert ids("distributionsets", "type.id==%d" % w.apps.set_type_id) == [w.apps.id]
    assert ids("distributionsets", "metadata.channel==beta") == [w.fw2.id]
    assert ids("distributionsets", "name==fw;version=gt=1.0") == [w.fw2.id]
    assert ids("distributionsets", "description==*dated") == [w.old.id]


def test_type_collections(world):
    assert [t.key for t in page(SoftwareModuleType.select(), "softwaremoduletypes",
                                q="key==OS")[0]] == ["os"]
    assert [t.key for t in page(SoftwareModuleType.select(), "softwaremoduletypes",
                                q="maxAssignments=gt=1;name==app*")[0]] == ["application"]
    assert [t.key for t in page(DistributionSetType.select(), "distributionsettypes",
                                q="key=in=(os,app)", sort="key:ASC")[0]] == ["app", "os"]
    assert [t.key for t in page(DistributionSetType.select(), "distributionsettypes",
                                q="description==*optional*")[0]] == ["os_app"]
    assert [t.key for t in page(DistributionSetType.select(), "distributionsettypes",
                                q="createdBy==system", sort="name:DESC")[0]] == [
        "os_app", "os", "app"]


def test_action_status_sorting(world):
    s1, s2, s3 = world.statuses
    select = ActionStatus.select().where(ActionStatus.action == world.a101)
    assert ids("actionstatus", select=select) == [s3, s2, s1]            # default id:DESC
    assert ids("actionstatus", sort="timestamp:ASC", select=select) == [s2, s3, s1]
    assert ids("actionstatus", sort="reportedAt:asc", select=select) == [s1, s3, s2]
    assert ids("actionstatus", sort="createdAt:DESC", select=select) == [s2, s3, s1]
    assert ids("actionstatus", sort="createdBy:asc,id:desc", select=select) == [s2, s3, s1]
    expect_error(SortInvalidField, "hawkbit.server.error.rest.param.invalidField",
                 ids, "actionstatus", sort="code:ASC")


# ---------------------------------------------------------------------------------- sorting


def test_default_sorts(world):
    assert targets() == ["dev-01", "dev-02", "DEV-03", "dev-04", "dev-10"]
    assert ids("actions") == [world.a104, world.a103, world.a102, world.a101, world.a100]
    assert ids("softwaremodules") == [world.os1.id, world.app.id, world.os2.id]
    assert ids("distributionsets") == sorted(ids("distributionsets"))


def test_sort_fields_and_directions(world):
    assert targets(sort="name:ASC") == ["dev-01", "dev-10", "dev-02", "dev-04", "DEV-03"]
    assert targets(sort="NAME:desc") == ["DEV-03", "dev-04", "dev-02", "dev-10", "dev-01"]
    assert targets(sort="id:DESC") == ["dev-10", "dev-04", "DEV-03", "dev-02", "dev-01"]
    assert targets(sort="CREATEDAT:desc") == ["dev-10", "dev-04", "DEV-03", "dev-02",
                                              "dev-01"]
    assert targets(sort="createdBy:ASC,createdAt:DESC") == ["dev-10", "dev-04", "DEV-03",
                                                            "dev-01", "dev-02"]
    assert targets(sort=" createdBy : asc , name : asc ,") == ["dev-01", "dev-10", "dev-04",
                                                               "DEV-03", "dev-02"]
    assert ids("softwaremodules", sort="name:ASC,version:DESC") == [
        world.app.id, world.os2.id, world.os1.id]
    assert ids("softwaremodules", sort="type:desc,id:desc") == [
        world.os2.id, world.os1.id, world.app.id]
    assert ids("actions", sort="weight:ASC") == [world.a103, world.a101, world.a100,
                                                 world.a102, world.a104]
    assert ids("actions", sort="target.controllerId:DESC,id:ASC") == [
        world.a103, world.a101, world.a102, world.a100, world.a104]


def test_sort_ties_broken_by_id_ascending(world):
    # group: null < field < lab/eu (dev-01, dev-04) < lab/us; ties by id even when DESC
    assert targets(sort="group:ASC") == ["dev-02", "dev-10", "dev-01", "dev-04", "DEV-03"]
    assert targets(sort="group:DESC") == ["DEV-03", "dev-01", "dev-04", "dev-10", "dev-02"]
    assert targets(sort="assignedDS.name:DESC") == ["dev-01", "dev-02", "dev-04", "DEV-03",
                                                    "dev-10"]
    assert ids("actions", sort="active:DESC") == [world.a101, world.a102, world.a100,
                                                  world.a103, world.a104]


@pytest.mark.parametrize("sort,error,code", [
    ("name", SortSyntax, "sortParamSyntax"),
    ("name:ASC:x", SortSyntax, "sortParamSyntax"),
    ("name:ASC,id", SortSyntax, "sortParamSyntax"),
    ("foo:ASC", SortInvalidField, "invalidField"),
    ("foo:UP", SortInvalidField, "invalidField"),
    ("attribute.hw:ASC", SortInvalidField, "invalidField"),
    ("metadata.location:ASC", SortInvalidField, "invalidField"),
    ("name:UP", SortInvalidDirection, "invalidDirection"),
    ("name:", SortInvalidDirection, "invalidDirection"),
])
def test_sort_errors(world, sort, error, code):
    caught = expect_error(error, "hawkbit.server.error.rest.param." + code, targets, sort=sort)
    assert caught.exception_class.startswith("org.eclipse.hawkbit.mgmt.rest.resource.exception.")


def test_sort_error_class_names():
    assert SortSyntax.exception_class.endswith(".SortParameterSyntaxErrorException")
    assert SortInvalidField.exception_class.endswith(".SortParameterUnsupportedFieldException")
    assert SortInvalidDirection.exception_class.endswith(
        ".SortParameterUnsupportedDirectionException")


def test_module_fields_are_not_sortable(world):
    expect_error(SortInvalidField, "hawkbit.server.error.rest.param.invalidField",
                 ids, "distributionsets", sort="module.name:ASC")


# ----------------------------------------------------------------------------------- paging


def test_paging_and_totals(world):
    rows, total = page(Target.select(), "targets", offset=1, limit=2)
    assert [r.controller_id for r in rows] == ["dev-02", "DEV-03"] and total == 5
    assert targets(offset=-5, limit=2) == ["dev-01", "dev-02"]
    assert len(targets(limit=0)) == 5
    assert len(targets(limit=-1)) == 5
    assert targets(offset=4, limit=1000) == ["dev-10"]
    rows, total = page(Target.select(), "targets", offset=10)
    assert rows == [] and total == 5
    rows, total = page(Target.select(), "targets", q="name==alpha*", limit=1)
    assert [r.controller_id for r in rows] == ["dev-01"] and total == 2


@pytest.mark.parametrize("offset,limit,expected", [
    (None, None, (0, 50)), (-1, 0, (0, 50)), (3, 1, (3, 1)), (0, 500, (0, 500)),
    (0, 501, (0, 500)), (7, -20, (7, 50)),
])
def test_clamp(offset, limit, expected):
    assert clamp(offset, limit) == expected


# --------------------------------------------------------------------------------- coercion


@pytest.mark.parametrize("value,expected", [
    ("abc", "abc"), (1.1, "1.1"), (12, "12"), (True, "true"), (None, None), ("", ""),
])
def test_as_str(value, expected):
    assert coerce.as_str(value, "version") == expected


def test_as_str_failures():
    with pytest.raises(BodyNotReadable) as caught:
        coerce.as_str([1], "version")
    assert caught.value.error_code == "hawkbit.server.error.rest.body.notReadable"
    with pytest.raises(BodyNotReadable):
        coerce.as_str({"a": 1}, "version")
    for value in (None, "", "   "):
        with pytest.raises(ConstraintViolation) as violated:
            coerce.as_str(value, "controllerId", required=True)
        assert "controllerId" in violated.value.message
        assert violated.value.error_code == "hawkbit.server.error.repo.constraintViolation"
    with pytest.raises(ConstraintViolation) as violated:
        coerce.as_str("x" * 65, "name", max_length=64)
    assert "name" in violated.value.message
    assert coerce.as_str("x" * 64, "name", max_length=64) == "x" * 64


@pytest.mark.parametrize("value,expected", [
    (12, 12), ("12", 12), (" -3 ", -3), (2.0, 2), (None, None), ("", None),
])
def test_as_int(value, expected):
    assert coerce.as_int(value, "id") == expected


@pytest.mark.parametrize("value", ["1.5", "12a", "abc", True, 1.5, [1], {"a": 1}])
def test_as_int_not_readable(value):
    with pytest.raises(BodyNotReadable):
        coerce.as_int(value, "id")


def test_as_int_constraints():
    assert coerce.as_int("1000", "weight", minimum=0, maximum=1000) == 1000
    assert coerce.as_int(0, "weight", minimum=0, maximum=1000) == 0
    for value in (-1, "1001"):
        with pytest.raises(ConstraintViolation) as violated:
            coerce.as_int(value, "weight", minimum=0, maximum=1000)
        assert "weight" in violated.value.message
    with pytest.raises(ConstraintViolation):
        coerce.as_int(None, "id", required=True)


@pytest.mark.parametrize("value,expected", [
    (True, True), (False, False), ("true", True), ("FALSE", False), (1, True), (0, False),
    (None, None),
])
def test_as_bool(value, expected):
    assert coerce.as_bool(value, "enabled") is expected


def test_as_bool_failures():
    for value in ("yes", "2", 2, [True], {"a": True}):
        with pytest.raises(BodyNotReadable):
            coerce.as_bool(value, "enabled")
    with pytest.raises(ConstraintViolation):
        coerce.as_bool(None, "enabled", required=True)


def test_as_list_and_object():
    assert coerce.as_list([1, 2], "modules") == [1, 2]
    assert coerce.as_list(None, "modules") is None
    assert coerce.as_object({"a": 1}, "body") == {"a": 1}
    assert coerce.as_object(None, "body") is None
    for value in ({"id": 1}, "1", 1):
        with pytest.raises(BodyNotReadable):
            coerce.as_list(value, "modules")
    for value in ([{"id": 1}], "x", 1):
        with pytest.raises(BodyNotReadable):
            coerce.as_object(value, "body")
    with pytest.raises(ConstraintViolation):
        coerce.as_list(None, "modules", required=True)


@pytest.mark.parametrize("text,expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True),
    ("false", False), ("0", False), ("NO", False), ("off", False), (None, None), ("", None),
])
def test_query_bool(text, expected):
    assert coerce.query_bool(text) is expected


def test_query_bool_rejects_other_words():
    with pytest.raises(BodyNotReadable) as caught:
        coerce.query_bool("maybe")
    assert caught.value.error_code == "hawkbit.server.error.rest.body.notReadable"


def test_query_int():
    assert coerce.query_int("10", 50) == 10
    assert coerce.query_int(" -3 ", 50) == -3
    assert coerce.query_int(None, 50) == 50
    assert coerce.query_int("", 0) == 0
    for text in ("ten", "1.5", "1e3"):
        with pytest.raises(coerce.BadParameter) as caught:
            coerce.query_int(text, 0, "limit")
        assert isinstance(caught.value, StoreError)
        assert "limit" in caught.value.message


def test_queries_leave_tables_untouched(world):
    # the filter compiles to a WHERE clause only: the seeded rows are all still there
    assert Target.select().count() == 5 and SoftwareModule.select().count() == 3


def test_every_order_ends_with_id_ascending():
    for name, collection in COLLECTIONS.items():
        for sort in (None, "createdBy:DESC"):
            sql = collection.model.select().order_by(*order_by(name, sort)).sql()[0]
            assert sql.endswith('."id" ASC'), (name, sort, sql)
