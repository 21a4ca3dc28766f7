"""The retry rule shared by webhook deliveries and SMS sends."""

import pytest

from tmk_common.backoff import retry_delay


def test_the_delay_doubles_from_the_base_after_each_failure():
    assert [retry_delay(n, 5, 600) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 80]


def test_the_delay_stops_growing_at_the_cap():
    assert retry_delay(8, 5, 600) == 600  # 5 × 2**7 = 640 would be past it
    assert retry_delay(7, 5, 600) == 320
    assert retry_delay(10_000, 10, 3600) == 3600  # a very long run of failures still gives the cap


def test_a_count_below_one_failure_is_refused():
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(0, 5, 600)
