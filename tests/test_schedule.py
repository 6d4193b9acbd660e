import calendar
import dataclasses
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from storage.schedule import (
    QuartzCron,
    WindowState,
    format_duration,
    parse_duration,
    parse_utc_offset,
    quartz_cron,
    validate_window,
    window_state,
)


def at(year, month, day, hour=0, minute=0, second=0, offset_minutes=0):
    """Epoch milliseconds of a wall-clock time in a fixed UTC offset."""
    tz = timezone(timedelta(minutes=offset_minutes))
    return round(datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp() * 1000)


def next_fire(expression, after_ms, offset_minutes=0):
    return QuartzCron(expression).next_fire_after(after_ms, offset_minutes)


def weekdays_of(year, month, weekday):
    """Days of a month falling on a Python weekday (Monday = 0)."""
    length = calendar.monthrange(year, month)[1]
    return [d for d in range(1, length + 1) if date(year, month, d).weekday() == weekday]


# Durations


def test_parse_duration_reads_hours_minutes_seconds():
    assert parse_duration("01:02:03") == 3723


def test_parse_duration_accepts_unpadded_fields():
    assert parse_duration("1:2:3") == 3723


def test_parse_duration_reads_minutes_seconds():
    assert parse_duration("05:30") == 330


def test_parse_duration_reads_bare_seconds():
    assert parse_duration("45") == 45


def test_parse_duration_accepts_the_largest_clock_value():
    assert parse_duration("23:59:59") == 86399


@pytest.mark.parametrize(
    "text, seconds",
    [("PT30S", 30), ("PT1H", 3600), ("PT5M30S", 330), ("P0DT1H", 3600), ("P1D", 86400),
     ("pt2m", 120)],
)
def test_parse_duration_reads_iso8601(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "-00:00:05", "-5", "abc", "1:2:3:4", "123", " 00:00:01", "00:00:01 ", "1h",
     "P", "PT", "P1DT", "PT1.5S", "PT-5S", "P1W", None, 30],
)
def test_parse_duration_rejects_malformed_text(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_parse_duration_rejects_hours_beyond_a_day():
    with pytest.raises(ValueError, match="hours must be 0-23"):
        parse_duration("25:00:00")


@pytest.mark.parametrize("text", ["00:60:00", "00:00:60", "60:00", "60"])
def test_parse_duration_rejects_minutes_or_seconds_beyond_59(text):
    with pytest.raises(ValueError, match="minutes and seconds must be 0-59"):
        parse_duration(text)


def test_format_duration_zero_pads_to_eight_characters():
    assert format_duration(3723) == "01:02:03"


def test_format_duration_of_zero():
    assert format_duration(0) == "00:00:00"


@pytest.mark.parametrize("seconds", [86400, 90000, 10**9])
def test_format_duration_clamps_a_day_or_more(seconds):
    assert format_duration(seconds) == "23:59:59"


def test_format_duration_clamps_negative_to_zero():
    assert format_duration(-5) == "00:00:00"


@pytest.mark.parametrize("text", ["00:00:00", "00:05:00", "12:34:56", "23:59:59"])
def test_format_duration_round_trips_parse_duration(text):
    assert format_duration(parse_duration(text)) == text


# UTC offsets


def test_parse_utc_offset_reads_colon_form():
    assert parse_utc_offset("+02:00") == 120


def test_parse_utc_offset_reads_negative_offset():
    assert parse_utc_offset("-05:30") == -330


def test_parse_utc_offset_reads_compact_form():
    assert parse_utc_offset("+0545") == 345


def test_parse_utc_offset_reads_z_as_utc():
    assert parse_utc_offset("Z") == 0


@pytest.mark.parametrize("text, minutes", [("+18:00", 1080), ("-18:00", -1080)])
def test_parse_utc_offset_accepts_the_range_limits(text, minutes):
    assert parse_utc_offset(text) == minutes


@pytest.mark.parametrize("text", ["+18:01", "-19:00", "+02:60"])
def test_parse_utc_offset_rejects_out_of_range(text):
    with pytest.raises(ValueError, match="within -18:00..\\+18:00"):
        parse_utc_offset(text)


@pytest.mark.parametrize("text", ["02:00", "+2:00", "+02:0", "UTC", "", "z", "+02:00:00", None])
def test_parse_utc_offset_rejects_malformed_text(text):
    with pytest.raises(ValueError, match="invalid UTC offset"):
        parse_utc_offset(text)


# Quartz cron: next fire time


def test_cron_year_field_is_read_in_the_given_offset():
    after = at(2025, 11, 21, 10)
    fire = next_fire("0 30 2 ? * * 2026", after, offset_minutes=120)
    assert fire == at(2026, 1, 1, 2, 30, offset_minutes=120) == at(2026, 1, 1, 0, 30)


def test_cron_negative_offset_shifts_fire_time_later_in_utc():
    assert next_fire("0 0 0 * * ?", at(2025, 11, 21, 10), -300) == at(2025, 11, 22, 5)


def test_cron_fires_strictly_after_the_given_time():
    assert next_fire("0 0 12 * * ?", at(2025, 11, 21, 12)) == at(2025, 11, 22, 12)


def test_cron_fires_at_the_next_whole_second():
    assert next_fire("* * * * * ?", at(2025, 11, 21, 10) + 500) == at(2025, 11, 21, 10, 0, 1)


def test_cron_weekday_range_skips_the_weekend():
    friday_afternoon = at(2025, 11, 21, 13)
    assert date(2025, 11, 21).weekday() == 4
    assert next_fire("0 0 12 ? * MON-FRI", friday_afternoon) == at(2025, 11, 24, 12)


def test_cron_day_of_week_one_is_sunday():
    next_sunday = next(d for d in weekdays_of(2025, 11, 6) if d > 21)
    assert next_fire("0 0 0 ? * 1", at(2025, 11, 21)) == at(2025, 11, next_sunday)


def test_cron_names_are_case_insensitive():
    first_sunday_of_2026 = weekdays_of(2026, 1, 6)[0]
    assert next_fire("0 0 0 ? jan,Feb sun", at(2025, 11, 21)) == at(2026, 1, first_sunday_of_2026)


def test_cron_month_list_skips_unlisted_months():
    assert next_fire("0 0 0 1 JAN,JUL ?", at(2025, 2, 1)) == at(2025, 7, 1)


def test_cron_step_from_star_starts_at_field_minimum():
    assert next_fire("*/15 * * * * ?", at(2025, 11, 21, 10, 0, 7)) == at(2025, 11, 21, 10, 0, 15)


def test_cron_step_from_value_runs_to_field_end():
    assert next_fire("0 5/20 * * * ?", at(2025, 11, 21, 10, 46)) == at(2025, 11, 21, 11, 5)


def test_cron_step_within_range_stops_at_range_end():
    # Hours 1-9/4 are 1, 5 and 9; after 09:00 the next is 01:00 next day.
    assert next_fire("0 0 1-9/4 * * ?", at(2025, 11, 21, 5)) == at(2025, 11, 21, 9)
    assert next_fire("0 0 1-9/4 * * ?", at(2025, 11, 21, 9)) == at(2025, 11, 22, 1)


def test_cron_range_wraps_past_field_end():
    assert next_fire("0 0 22-1 * * ?", at(2025, 11, 21, 23, 30)) == at(2025, 11, 22, 0)


def test_cron_weekday_range_wraps_from_saturday_to_sunday():
    monday = at(2025, 11, 24, 12)
    assert next_fire("0 0 0 ? * FRI-MON", monday) == at(2025, 11, 28)


def test_cron_last_day_of_month_handles_leap_february():
    assert next_fire("0 0 0 L * ?", at(2028, 2, 2)) == at(2028, 2, calendar.monthrange(2028, 2)[1])


def test_cron_last_day_minus_offset():
    assert next_fire("0 0 0 L-2 * ?", at(2026, 2, 1)) == at(2026, 2, 26)


def test_cron_last_weekday_of_month_moves_off_saturday():
    assert date(2026, 2, 28).weekday() == 5
    assert next_fire("0 0 0 LW * ?", at(2026, 2, 1)) == at(2026, 2, 27)


def test_cron_nearest_weekday_moves_saturday_back_to_friday():
    assert date(2025, 11, 15).weekday() == 5
    assert next_fire("0 0 0 15W * ?", at(2025, 11, 1)) == at(2025, 11, 14)


def test_cron_nearest_weekday_moves_sunday_forward_to_monday():
    assert date(2026, 3, 15).weekday() == 6
    assert next_fire("0 0 0 15W * ?", at(2026, 3, 1)) == at(2026, 3, 16)


def test_cron_nearest_weekday_stays_in_month_at_its_start():
    assert date(2025, 11, 1).weekday() == 5
    assert next_fire("0 0 0 1W * ?", at(2025, 10, 31)) == at(2025, 11, 3)


def test_cron_nearest_weekday_stays_in_month_at_its_end():
    assert date(2025, 11, 30).weekday() == 6
    assert next_fire("0 0 0 30W * ?", at(2025, 11, 1)) == at(2025, 11, 28)


def test_cron_nearest_weekday_skips_months_too_short():
    assert next_fire("0 0 0 31W * ?", at(2025, 11, 1)) == at(2025, 12, 31)


def test_cron_nth_weekday_of_month():
    third_friday = weekdays_of(2025, 12, 4)[2]
    assert next_fire("0 0 0 ? * 6#3", at(2025, 12, 1)) == at(2025, 12, third_friday)


def test_cron_fifth_weekday_skips_months_without_one():
    assert len(weekdays_of(2026, 1, 0)) == len(weekdays_of(2026, 2, 0)) == 4
    assert next_fire("0 0 0 ? * MON#5", at(2026, 1, 1)) == at(2026, 3, weekdays_of(2026, 3, 0)[4])


def test_cron_last_given_weekday_of_month():
    last_thursday = weekdays_of(2025, 11, 3)[-1]
    assert next_fire("0 0 0 ? * 5L", at(2025, 11, 1)) == at(2025, 11, last_thursday)


def test_cron_bare_l_in_day_of_week_is_saturday():
    next_saturday = next(d for d in weekdays_of(2025, 11, 5) if d > 21)
    assert next_fire("0 0 0 ? * L", at(2025, 11, 21)) == at(2025, 11, next_saturday)


def test_cron_lists_may_mix_special_days():
    assert next_fire("0 0 0 1,L * ?", at(2025, 11, 2)) == at(2025, 11, 30)


def test_cron_year_in_the_past_never_fires():
    assert next_fire("0 0 0 1 1 ? 2020", at(2025, 11, 21)) is None


def test_cron_nothing_fires_after_2199():
    assert next_fire("59 59 23 31 12 ?", at(2199, 12, 31, 23, 59, 59)) is None


def test_cron_search_across_centuries_is_fast():
    started = time.perf_counter()
    assert next_fire("59 59 23 31 12 ? 2199", at(1970, 1, 1)) == at(2199, 12, 31, 23, 59, 59)
    assert time.perf_counter() - started < 0.1


def test_cron_impossible_date_returns_none_quickly():
    started = time.perf_counter()
    assert next_fire("0 0 0 30 2 ?", at(1970, 1, 1)) is None
    assert time.perf_counter() - started < 0.2


# Quartz cron: invalid expressions


@pytest.mark.parametrize("expression", ["0 0 0 1 * MON", "0 0 0 ? * ?", "0 0 0 * * *"])
def test_cron_requires_exactly_one_day_field_to_be_question_mark(expression):
    with pytest.raises(ValueError, match="exactly one of day-of-month and day-of-week"):
        QuartzCron(expression)


@pytest.mark.parametrize("expression", ["0 0 * * ?", "0 0 0 * * ? 2026 1", ""])
def test_cron_requires_six_or_seven_fields(expression):
    with pytest.raises(ValueError, match="expected 6 or 7 fields"):
        QuartzCron(expression)


@pytest.mark.parametrize(
    "expression",
    ["60 0 0 * * ?", "0 60 0 * * ?", "0 0 24 * * ?", "0 0 0 32 * ?", "0 0 0 0 * ?",
     "0 0 0 * 13 ?", "0 0 0 ? * 8", "0 0 0 ? * 0", "0 0 0 * * ? 1969", "0 0 0 * * ? 2200",
     "0 0 0 ? * 6#6", "0 0 0 ? * 6#0", "0 0 0 L-31 * ?", "0 0 0 32W * ?", "*/61 * * * * ?",
     "*/0 * * * * ?", "0 0 0 ? * 9L"],
)
def test_cron_rejects_values_out_of_range(expression):
    with pytest.raises(ValueError, match="invalid Quartz cron expression.*outside"):
        QuartzCron(expression)


@pytest.mark.parametrize(
    "expression",
    ["a 0 0 * * ?", "0 0 0 * FOO ?", "0 0 0 ? * MON-", "0 0 0 1-5W * ?", "0 0 0 ? * L5",
     "0 0 0 1,,2 * ?", "0 0 0 W * ?", "0 ? 0 * * ?", "0 0 0 ?,1 * ?", "0 0 0 ? * MON#",
     "0 0 0 ? * *L", "0 0 0 L * MON", "0 0 0 * JAN ? 20x6", "/5 * * * * ?", "0 0 0 1-2-3 * ?",
     "0 0 0 ? * 2#1#1", "0 0 0 ? * MONDAY"],
)
def test_cron_rejects_malformed_tokens(expression):
    with pytest.raises(ValueError, match="invalid Quartz cron expression"):
        QuartzCron(expression)


def test_cron_rejects_non_string():
    with pytest.raises(ValueError, match="expected a string"):
        QuartzCron(None)


def test_quartz_cron_parses_each_expression_once():
    assert quartz_cron("0 0 3 * * ?") is quartz_cron("0 0 3 * * ?")


# Maintenance windows

NIGHTLY = "0 0 2 * * ?"


def test_window_before_start_is_closed_and_reports_start():
    state = window_state(NIGHTLY, "01:00:00", "+00:00", at(2025, 11, 21, 1, 30))
    assert state == WindowState(start_ms=at(2025, 11, 21, 2), is_open=False, lapsed=False)


def test_window_is_open_at_its_start():
    state = window_state(NIGHTLY, "01:00:00", "+00:00", at(2025, 11, 21, 2))
    assert state == WindowState(start_ms=at(2025, 11, 21, 2), is_open=True, lapsed=False)


def test_window_is_open_inside():
    state = window_state(NIGHTLY, "01:00:00", "+00:00", at(2025, 11, 21, 2, 30))
    assert state == WindowState(start_ms=at(2025, 11, 21, 2), is_open=True, lapsed=False)


def test_window_closes_at_its_end_and_reports_next_start():
    state = window_state(NIGHTLY, "01:00:00", "+00:00", at(2025, 11, 21, 3))
    assert state == WindowState(start_ms=at(2025, 11, 22, 2), is_open=False, lapsed=False)


def test_window_schedule_is_read_in_its_timezone():
    state = window_state(NIGHTLY, "01:00:00", "+02:00", at(2025, 11, 21, 0, 30))
    assert state == WindowState(start_ms=at(2025, 11, 21, 0), is_open=True, lapsed=False)


def test_window_last_occurrence_stays_open_until_its_end():
    state = window_state("0 0 23 31 12 ? 2025", "02:00:00", "+00:00", at(2026, 1, 1, 0, 30))
    assert state == WindowState(start_ms=at(2025, 12, 31, 23), is_open=True, lapsed=False)


def test_window_without_current_or_future_occurrence_is_lapsed():
    state = window_state("0 0 0 1 1 ? 2020", "01:00:00", "+00:00", at(2025, 11, 21))
    assert state == WindowState(start_ms=None, is_open=False, lapsed=True)


def test_window_state_is_immutable():
    state = window_state(NIGHTLY, "01:00:00", "+00:00", at(2025, 11, 21))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.is_open = True


def test_window_from_rauc_hawkbit_updater_opens_and_closes_on_time():
    # rauc-hawkbit-updater's test builds "S M H ? month * year" for 15 s ahead.
    tz = timezone(timedelta(hours=5, minutes=30))
    now = at(2025, 6, 30, 23, 59, 50, offset_minutes=330) + 250
    soon = datetime.fromtimestamp((now + 15_000) / 1000, tz)
    schedule = f"{soon.second} {soon.minute} {soon.hour} ? {soon.month} * {soon.year}"
    assert not window_state(schedule, "00:01:00", "+05:30", now).is_open
    assert window_state(schedule, "00:01:00", "+05:30", now + 16_000).is_open
    assert not window_state(schedule, "00:01:00", "+05:30", now + 76_000).is_open


def test_validate_window_returns_state_of_a_valid_window():
    state = validate_window(NIGHTLY, "01:00:00", "+00:00", at(2025, 11, 21, 2, 30))
    assert state == WindowState(start_ms=at(2025, 11, 21, 2), is_open=True, lapsed=False)


def test_validate_window_rejects_a_lapsed_schedule():
    with pytest.raises(ValueError, match="no window that is open now or starts later"):
        validate_window("0 0 0 1 1 ? 2020", "01:00:00", "+00:00", at(2025, 11, 21))


def test_validate_window_rejects_a_bad_schedule():
    with pytest.raises(ValueError, match="invalid Quartz cron expression"):
        validate_window("0 0 2 * *", "01:00:00", "+00:00", at(2025, 11, 21))


def test_validate_window_rejects_a_bad_duration():
    with pytest.raises(ValueError, match="invalid duration"):
        validate_window(NIGHTLY, "1 hour", "+00:00", at(2025, 11, 21))


def test_validate_window_rejects_a_zero_duration():
    with pytest.raises(ValueError, match="must be positive"):
        validate_window(NIGHTLY, "00:00:00", "+00:00", at(2025, 11, 21))


def test_validate_window_rejects_a_bad_timezone():
    with pytest.raises(ValueError, match="invalid UTC offset"):
        validate_window(NIGHTLY, "01:00:00", "Europe/Berlin", at(2025, 11, 21))
