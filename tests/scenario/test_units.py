"""Units of SCENARIOS.md: every spelling the contract shows, and the errors for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simlog.scenario.errors import UnitError
from simlog.scenario.units import (
    MAX,
    ByteRate,
    MessageRate,
    format_size,
    format_time_us,
    parse_byte_rate,
    parse_message_rate,
    parse_rate,
    parse_size_bytes,
    parse_time_us,
)


@pytest.mark.parametrize(("text", "us"), [
    ("800us", 800), ("250ms", 250_000), ("10s", 10_000_000), ("5m", 300_000_000),
    ("1h", 3_600_000_000), (60, 60_000_000), (1.5, 1_500_000), ("0.5ms", 500), ("0s", 0),
])
def test_time(text, us):
    assert parse_time_us(text) == us


@pytest.mark.parametrize(("text", "message"), [
    ("10 sec", "expected a duration like 800us, 250ms, 10s, 5m, 1h or a number of seconds, "
               "found '10 sec'"),
    ("0.5us", "'0.5us' is not a whole number of microseconds"),
    ("-1s", "expected a duration >= 0, found '-1s'"),
    (True, "found True"),
])
def test_time_errors(text, message):
    with pytest.raises(UnitError, match=None) as err:
        parse_time_us(text)
    assert message in str(err.value)


def test_signed_time_allows_negative_offsets():
    assert parse_time_us("-30s", signed=True) == -30_000_000


@pytest.mark.parametrize(("text", "nbytes"), [
    ("200B", 200), ("16KiB", 16_384), ("1MiB", 1_048_576), ("1GiB", 1_073_741_824),
    ("10KB", 10_000), ("2MB", 2_000_000), (512, 512), ("1.5KiB", 1536),
])
def test_size(text, nbytes):
    assert parse_size_bytes(text) == nbytes


@pytest.mark.parametrize("bad", ["16kib", "1.5B", "ten", 1.5, "-1B"])
def test_size_errors(bad):
    with pytest.raises(UnitError):
        parse_size_bytes(bad)


def test_rates():
    assert parse_rate("5000/s") == MessageRate(5000.0)
    assert parse_rate("2MiB/s") == ByteRate(2 * 1_048_576)
    assert parse_rate("1Gbps") == ByteRate(125_000_000)
    assert parse_rate("100Mbps") == ByteRate(12_500_000)
    assert parse_rate("max") is MAX


def test_rate_kind_mismatch_is_named():
    with pytest.raises(UnitError, match="expected messages per second like 5000/s or max, "
                                         "found '2MiB/s'"):
        parse_message_rate("2MiB/s")
    with pytest.raises(UnitError, match="expected a bandwidth like 500MiB/s or 1Gbps, "
                                         "found '5000/s'"):
        parse_byte_rate("5000/s")
    with pytest.raises(UnitError, match="expected a rate like 5000/s, 2MiB/s, 1Gbps or max, "
                                         "found 'fast'"):
        parse_rate("fast")


@given(st.integers(min_value=-10**13, max_value=10**13))
def test_time_format_round_trips(us):
    assert parse_time_us(format_time_us(us), signed=True) == us


@given(st.integers(min_value=0, max_value=10**13))
def test_size_format_round_trips(nbytes):
    assert parse_size_bytes(format_size(nbytes)) == nbytes
