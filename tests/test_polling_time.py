"""hawkBit's pollingTime syntax: deviation and per-target overrides (mgmt contract §11.3)."""

import pytest

from conftest import DEVICE, token
from storage import schedule, tenant


def sleep_of(server, controller_id="dev-1", secret="token-1"):
    return server.http.get(DEVICE + "/" + controller_id,
                           headers=token(secret)).json["config"]["polling"]["sleep"]


def test_override_matching_the_target_sets_its_sleep(server):
    server.target("dev-1", "token-1")
    server.target("dev-2", "token-2")
    server.http.put_json(DEVICE + "/dev-1/configData", {"data": {"channel": "nightly"}},
                         headers=token("token-1"))
    server.configure(pollingTime="00:05:00, attribute.channel==nightly -> 00:01:00")

    assert sleep_of(server, "dev-1", "token-1") == "00:01:00"
    assert sleep_of(server, "dev-2", "token-2") == "00:05:00"


def test_first_matching_override_wins_and_filters_may_contain_commas(server):
    server.target("dev-1", "token-1")
    server.configure(pollingTime="00:05:00, name==x,name==dev-1 -> 00:02:00, "
                                 "name==dev-* -> 00:01:00")

    assert sleep_of(server) == "00:02:00"


def test_deviation_is_accepted_and_the_sleep_stays_the_plain_interval(server):
    server.target("dev-1", "token-1")
    server.configure(pollingTime="00:01:00~10%")

    assert sleep_of(server) == "00:01:00"


def test_parse_polling_time_reads_all_three_parts():
    assert schedule.parse_polling_time("00:05:00~10%, a==b -> 00:01:00") == (
        300, 10, (("a==b", 60),))


@pytest.mark.parametrize("text", ["00:05:00, -> 00:01:00", "00:05:00, a==b", "00:05:00~x%",
                                  "00:05:00, a==b -> soon"])
def test_malformed_polling_times_are_refused(server, text):
    with pytest.raises(tenant.InvalidConfigValue):
        server.configure(pollingTime=text)


def test_override_interval_below_the_minimum_is_refused(server):
    with pytest.raises(tenant.InvalidConfigValue):
        server.configure(pollingTime="00:05:00, name==a -> 00:00:05")


def test_override_with_a_broken_filter_is_refused_by_the_management_api(server):
    server.http.set_authorization(("Basic", ("admin", "admin")))
    response = server.http.put_json("/rest/v1/system/configs/pollingTime",
                                    {"value": "00:05:00, name=== -> 00:01:00"}, status=400)
    assert response.json["errorCode"] == "hawkbit.server.error.rest.param.rsqlParamSyntax"
