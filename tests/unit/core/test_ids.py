"""Snowflake ids: layout, ordering, uniqueness, clock going backwards, node lease expiry."""

from __future__ import annotations

import time

import pytest

from keel.ids import (
    MAX_SEQUENCE,
    ClockMovedBackwardsError,
    IdError,
    NodeLeaseLostError,
    Snowflake,
    id_node,
    id_timestamp_ms,
)

EPOCH = 1_767_225_600_000


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(1, round(seconds * 1000))


def test_layout_and_order() -> None:
    clock = Clock(EPOCH + 5_000)
    ids = Snowflake(42, epoch_ms=EPOCH, clock=clock)
    first = ids.next_id()
    second = ids.next_id()
    clock.now += 1
    third = ids.next_id()
    assert first < second < third
    assert id_node(first) == 42
    assert id_timestamp_ms(first, EPOCH) == EPOCH + 5_000
    assert id_timestamp_ms(third, EPOCH) == EPOCH + 5_001
    assert 0 < first < 2**63


def test_sequence_overflow_waits_for_the_next_millisecond() -> None:
    ticks = iter([EPOCH + 1] * (MAX_SEQUENCE + 2) + [EPOCH + 2] * 10)
    ids = Snowflake(1, epoch_ms=EPOCH, clock=lambda: next(ticks))
    issued = [ids.next_id() for _ in range(MAX_SEQUENCE + 2)]
    assert len(set(issued)) == len(issued)
    assert id_timestamp_ms(issued[-1], EPOCH) == EPOCH + 2


def test_small_clock_step_back_is_waited_out_without_duplicates() -> None:
    clock = Clock(EPOCH + 10_000)
    ids = Snowflake(3, epoch_ms=EPOCH, max_skew_ms=50, clock=clock, sleep=clock.sleep)
    before = ids.next_id()
    clock.now -= 20
    after = ids.next_id()
    assert after > before
    assert clock.slept


def test_big_clock_step_back_fails_loudly() -> None:
    clock = Clock(EPOCH + 10_000)
    ids = Snowflake(3, epoch_ms=EPOCH, max_skew_ms=50, clock=clock, sleep=clock.sleep)
    ids.next_id()
    clock.now -= 5_000
    with pytest.raises(ClockMovedBackwardsError, match="moved back 5000 ms"):
        ids.next_id()


def test_no_ids_without_a_valid_lease() -> None:
    ids = Snowflake(None, epoch_ms=EPOCH)
    with pytest.raises(NodeLeaseLostError, match="no node id"):
        ids.next_id()
    ids.set_node(7, time.monotonic() - 1)
    with pytest.raises(NodeLeaseLostError, match="not renewed"):
        ids.next_id()
    ids.extend(time.monotonic() + 60)
    assert id_node(ids.next_id()) == 7


def test_many_ids_are_unique_and_increasing() -> None:
    ids = Snowflake(9, epoch_ms=EPOCH)
    issued = [ids.next_id() for _ in range(20_000)]
    assert issued == sorted(issued)
    assert len(set(issued)) == len(issued)


def test_node_id_range_and_epoch_checked() -> None:
    with pytest.raises(ValueError, match="out of range"):
        Snowflake(1024, epoch_ms=EPOCH)
    ids = Snowflake(1, epoch_ms=int(time.time() * 1000) + 60_000)
    with pytest.raises(IdError, match="outside the id range"):
        ids.next_id()
