"""Where a time-bounded replay starts: the broker's time index only when it checks out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition

from amc_learning.consumers.replay import ReplayStats, window_starts

TP = TopicPartition("learning.thesis.v1", 0)


@dataclass
class _Record:
    offset: int
    timestamp: int


class FakeConsumer:
    """A partition of records with the given timestamps and a time index answering `index`."""

    def __init__(self, stamps: list[int], index: int | None) -> None:
        self.stamps, self.index, self.position = stamps, index, 0

    async def beginning_offsets(self, partitions):  # type: ignore[no-untyped-def]
        return dict.fromkeys(partitions, 0)

    async def offsets_for_times(self, wanted):  # type: ignore[no-untyped-def]
        answer = None if self.index is None else type("A", (), {"offset": self.index})()
        return dict.fromkeys(wanted, answer)

    def seek(self, tp, offset):  # type: ignore[no-untyped-def]
        self.position = offset

    async def getmany(self, tp, timeout_ms, max_records):  # type: ignore[no-untyped-def]
        return {tp: [_Record(self.position, self.stamps[self.position])]}


def starts(stamps: list[int], index: int | None, since: int) -> tuple[int, int]:
    stats = ReplayStats()
    found = asyncio.run(window_starts(FakeConsumer(stamps, index), [TP], since, stats))  # type: ignore[arg-type]
    return found[TP], stats.scanned_partitions


def test_a_right_time_index_is_used():
    assert starts([10, 20, 30, 40, 50], index=3, since=35) == (3, 0)


def test_a_time_index_that_skips_records_of_the_window_is_not_trusted():
    # record 2 (ts 30) is inside the window [25, ...) but the index says start at 3
    assert starts([10, 20, 30, 40, 50], index=3, since=25) == (0, 1)


def test_no_answer_or_the_beginning_means_reading_from_the_beginning():
    assert starts([10, 20, 30], index=None, since=25) == (0, 1)
    assert starts([10, 20, 30], index=0, since=25) == (0, 1)  # Tansu: always 0


def test_no_lower_bound_reads_everything():
    assert starts([10, 20, 30], index=2, since=None) == (0, 0)  # type: ignore[arg-type]
