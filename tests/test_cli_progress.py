"""The upload's progress bar (client.commands.Progress): one line that fits the terminal's
width and tells the rate and the time left, drawn on a fake terminal with a fake clock.
"""

import io

import pytest

from client.commands import Progress

MIB = 1024 * 1024
LONG_NAME = "gateway-rootfs-2026.05.1-release-candidate.img"


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def upload(columns, label=LONG_NAME, total=30 * MIB, chunk=MIB, seconds_per_chunk=1.0):
    """Everything a Progress of `columns` drew for an upload at a steady rate, as the lines
    a terminal shows one after the other (each "\\r" starts over, "\\n" ends the bar)."""
    terminal, clock = Terminal(), Clock()
    progress = Progress(label, total, stream=terminal, clock=clock, columns=columns)
    sent = 0
    while sent < total:
        clock.now += seconds_per_chunk
        progress.advance(min(chunk, total - sent))
        sent += chunk
    progress.finish()
    output = terminal.getvalue()
    assert output.endswith("\n") and output.count("\n") == 1
    return output[:-1].lstrip("\r").split("\r")


@pytest.mark.parametrize("columns", [40, 80, 120])
def test_no_line_reaches_the_last_column(columns):
    lines = upload(columns)
    assert len(lines) == 31
    assert max(len(line) for line in lines) <= columns - 1


@pytest.mark.parametrize("columns", [40, 80, 120])
def test_every_width_shows_the_percentage_rate_and_time_left(columns):
    line = upload(columns)[10]
    assert " 36%" in line
    assert "1.0 MiB/s" in line
    assert "0:19 left" in line


def test_80_columns_keep_the_bar_and_the_bytes_sent():
    line = upload(80)[10]
    assert "[" in line and "#" in line
    assert "11.0 MiB / 30.0 MiB" in line


def test_120_columns_show_a_long_name_up_to_24_characters():
    line = upload(120)[10]
    assert line.startswith("gateway-rootfs-2026.0... [")


def test_40_columns_give_up_the_bar_before_the_figures():
    line = upload(40)[10]
    assert "[" not in line
    assert line.startswith("gateway-r...  36%")


def test_the_rate_is_that_of_the_last_seconds_so_time_left_follows_a_slower_link():
    terminal, clock = Terminal(), Clock()
    progress = Progress("image.bin", 100 * MIB, stream=terminal, clock=clock, columns=80)
    for _ in range(20):
        clock.now += 1
        progress.advance(4 * MIB)
    for _ in range(10):
        clock.now += 1
        progress.advance(MIB)
    last = terminal.getvalue().split("\r")[-1]
    assert "1.0 MiB/s" in last
    assert "0:10 left" in last


def test_the_final_line_shows_the_average_rate_and_the_time_taken():
    final = upload(80, total=10 * MIB, seconds_per_chunk=2.0)[-1]
    assert "100%" in final
    assert "512.0 KiB/s" in final
    assert "in 0:20" in final


def test_a_shorter_line_blanks_what_the_longer_one_before_left():
    terminal, clock = Terminal(), Clock()
    progress = Progress("image.bin", 10 * 1024 * MIB, stream=terminal, clock=clock,
                        columns=120)
    clock.now += 1
    progress.advance(MIB)
    first = terminal.getvalue()
    assert first.endswith(" 1.0 MiB/s  2:50:39 left")
    clock.now += 1
    progress.advance(10 * 1024 * MIB - MIB)
    second = terminal.getvalue()[len(first):]
    assert second.endswith(" 5.0 GiB/s  in 0:02    ")
    assert len(second) == len(first)


def test_the_terminal_width_is_measured_when_no_width_is_given(monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    terminal, clock = Terminal(), Clock()
    progress = Progress(LONG_NAME, 10 * MIB, stream=terminal, clock=clock)
    for _ in range(10):
        clock.now += 1
        progress.advance(MIB)
    lines = terminal.getvalue().lstrip("\r").split("\r")
    assert max(len(line) for line in lines) == 69


def test_nothing_is_drawn_when_stderr_is_no_terminal():
    stream, clock = io.StringIO(), Clock()
    progress = Progress("image.bin", MIB, stream=stream, clock=clock, columns=80)
    clock.now += 1
    progress.advance(MIB)
    progress.finish()
    assert stream.getvalue() == ""
