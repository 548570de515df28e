"""The outcomes worker's continuity guard: a partition must continue where it resumed."""

from __future__ import annotations

from faust.types import TP

from amc_learning.consumers.faust_workarounds import Continuity

A, B = TP("learning.thesis.v1", 0), TP("learning.thesis.v1", 1)


def test_contiguous_offsets_and_redeliveries_pass():
    c = Continuity()
    c.reset({A: 142})
    assert [c.skipped(A, o) for o in (142, 143, 144)] == [None, None, None]
    assert c.skipped(A, 140) is None, "a redelivery below the expected offset is harmless"
    assert c.skipped(A, 145) is None, "a redelivery does not move the expectation back"


def test_a_jump_past_the_resume_point_is_a_skip():
    c = Continuity()
    c.reset({A: 142, B: 0})
    assert c.skipped(A, 1846) == 142
    assert c.skipped(A, 1846) == 142, "the hole stays reported until it is filled"
    assert c.skipped(B, 1074) == 0


def test_a_never_committed_partition_must_start_at_its_beginning():
    c = Continuity()
    c.reset({A: None, B: None})
    assert not c.unconfirmed(A, 0) and c.skipped(A, 0) is None and c.skipped(A, 1) is None
    assert c.unconfirmed(B, 1074), "only the broker can say where B begins"
    c.confirm(B, 0)  # it begins at 0: records 0..1073 were skipped
    assert c.skipped(B, 1074) == 0
    c.reset({B: None})
    c.confirm(B, 1074)  # retention removed 0..1073: nothing was skipped
    assert c.skipped(B, 1074) is None and c.skipped(B, 1075) is None
    c.reset({B: None})
    c.confirm(B, None)  # the broker did not answer: unguarded, never a false alarm
    assert c.skipped(B, 5000) is None


def test_a_rebalance_resets_the_expectations():
    c = Continuity()
    c.reset({A: 10})
    assert c.skipped(A, 10) is None
    c.reset({A: 500})  # another worker committed up to 500 while the partition was away
    assert c.skipped(A, 500) is None
    assert c.skipped(A, 502) == 501


def test_a_partition_without_a_known_start_is_taken_as_it_comes():
    c = Continuity()
    assert c.skipped(A, 77) is None
    assert c.skipped(A, 78) is None
    assert c.skipped(A, 80) == 79


def test_the_consumer_thread_gets_a_snapshot_of_the_active_partitions():
    """faust passed its live set to the aiokafka thread, which treats an empty set as
    "every partition": emptied while the thread waited (end of a recovery), the thread
    drained partitions faust then dropped as inactive, and the worker stalled."""
    import asyncio

    from amc_learning.consumers.faust_workarounds import SnapshotConsumer

    live = {A, B}

    class Thread:
        seen: set | None = None

        async def getmany(self, partitions, timeout):
            live.clear()  # faust's main thread pauses them while this one waits
            self.seen = partitions
            return {}

    consumer = object.__new__(SnapshotConsumer)
    consumer._thread = thread = Thread()
    asyncio.run(consumer._getmany(live, 1.0))
    assert thread.seen == {A, B} and thread.seen is not live
    asyncio.run(consumer._getmany(None, 1.0))
    assert thread.seen is None  # client-only mode: "every partition" stays explicit
