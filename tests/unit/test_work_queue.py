"""The bridge's work queue keeps client-go's promises: one reconciler per key at a time,
no change lost while a key is processed, and per-key back-off for failures; no servers."""

from __future__ import annotations

import asyncio
import random

import pytest

from acmeflow.k8s_bridge.work_queue import (
    ExponentialBackoff,
    KeyQueue,
    WorkQueue,
    reconcile_forever,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def drain(queue: KeyQueue[str]) -> list[str]:
    """Take every ready key (and mark each done), in order."""
    taken = []
    while (item := queue.take()) is not None:
        taken.append(item)
        queue.done(item)
    return taken


# --- Dirty set: a waiting key is queued once ----------------------------------------------


def test_a_key_added_twice_while_waiting_is_handed_out_once() -> None:
    queue: KeyQueue[str] = KeyQueue(FakeClock())
    for item in ("a", "b", "a", "a"):
        queue.add(item)
    assert len(queue) == 2
    assert drain(queue) == ["a", "b"]


# --- Processing set: one reconciler per key at a time -------------------------------------


def test_a_key_being_processed_is_not_handed_to_a_second_reconciler() -> None:
    queue: KeyQueue[str] = KeyQueue(FakeClock())
    queue.add("a")
    assert queue.take() == "a"

    queue.add("a")  # the resource changed while its first reconcile runs

    assert queue.take() is None, "a second reconciler got a key that is still processing"


def test_a_key_added_while_processing_is_queued_once_after_done() -> None:
    queue: KeyQueue[str] = KeyQueue(FakeClock())
    queue.add("a")
    assert queue.take() == "a"
    queue.add("a")
    queue.add("a")

    queue.done("a")

    assert queue.take() == "a", "the change seen during processing was lost"
    queue.done("a")
    assert queue.take() is None


def test_done_without_a_new_add_does_not_queue_the_key_again() -> None:
    queue: KeyQueue[str] = KeyQueue(FakeClock())
    queue.add("a")
    assert queue.take() == "a"
    queue.done("a")
    assert queue.take() is None


def test_other_keys_are_handed_out_while_one_is_processing() -> None:
    queue: KeyQueue[str] = KeyQueue(FakeClock())
    queue.add("a")
    queue.add("b")
    assert queue.take() == "a"
    queue.add("a")
    assert queue.take() == "b"


# --- Held back: add_after ------------------------------------------------------------------


def test_a_held_back_key_is_ready_only_when_due() -> None:
    clock = FakeClock()
    queue: KeyQueue[str] = KeyQueue(clock)
    queue.add_after("a", 2.0)
    assert queue.take() is None
    assert queue.seconds_to_next() == 2.0

    clock.advance(1.999)
    assert queue.take() is None
    clock.advance(0.001)

    assert queue.take() == "a"
    assert queue.seconds_to_next() is None


def test_the_earliest_time_wins_when_a_key_is_held_back_twice() -> None:
    clock = FakeClock()
    queue: KeyQueue[str] = KeyQueue(clock)
    queue.add_after("a", 10.0)
    queue.add_after("a", 1.0)
    queue.add_after("a", 5.0)
    assert queue.seconds_to_next() == 1.0

    clock.advance(1.0)
    assert drain(queue) == ["a"]
    clock.advance(10.0)
    assert drain(queue) == [], "a superseded later time released the key again"


def test_no_delay_means_now() -> None:
    queue: KeyQueue[str] = KeyQueue(FakeClock())
    queue.add_after("a", 0)
    assert queue.take() == "a"


def test_a_held_back_key_that_comes_due_while_processing_waits_for_done() -> None:
    clock = FakeClock()
    queue: KeyQueue[str] = KeyQueue(clock)
    queue.add("a")
    assert queue.take() == "a"
    queue.add_after("a", 1.0)  # e.g. a retry scheduled by the failing reconcile itself
    clock.advance(1.0)

    assert queue.take() is None
    queue.done("a")
    assert queue.take() == "a"


# --- Per-key exponential back-off ----------------------------------------------------------


def test_backoff_doubles_per_failure_of_a_key_up_to_the_cap() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(first_s=0.005, max_s=1.0)
    delays = [backoff.when("a") for _ in range(10)]
    assert delays == [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0, 1.0]
    assert backoff.failures("a") == 10


def test_backoff_is_per_key_and_forget_resets_it() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(first_s=0.005, max_s=300.0)
    for _ in range(3):
        backoff.when("a")
    assert backoff.when("b") == 0.005, "one key's failures slowed another key"

    backoff.forget("a")

    assert backoff.failures("a") == 0
    assert backoff.when("a") == 0.005


def test_backoff_stays_at_the_cap_however_often_a_key_fails() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(first_s=0.005, max_s=300.0)
    delays = [backoff.when("a") for _ in range(2000)]
    assert delays[-1] == 300.0


def test_a_rate_limited_retry_is_held_back_by_the_key_s_backoff() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        queue: WorkQueue[str] = WorkQueue(ExponentialBackoff(first_s=2.0, max_s=8.0), clock)
        assert [queue.add_rate_limited("a") for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]
        clock.advance(1.0)
        assert len(queue) == 0
        clock.advance(1.0)
        # The timeout only stops a broken queue from hanging the test; nothing waits for it.
        assert await asyncio.wait_for(queue.get(), timeout=10) == "a"

    asyncio.run(scenario())


# --- The asyncio queue under eight concurrent reconcilers -----------------------------------


def test_waiting_reconcilers_wake_up_for_new_keys() -> None:
    async def scenario() -> tuple[list[str], int]:
        queue: WorkQueue[str] = WorkQueue()
        waiting = [asyncio.create_task(queue.get()) for _ in range(3)]
        await asyncio.sleep(0)
        queue.add("a")
        queue.add("b")
        for _ in range(3):
            await asyncio.sleep(0)
        got = sorted(t.result() for t in waiting if t.done())
        still_waiting = sum(not t.done() for t in waiting)
        for task in waiting:
            task.cancel()
        return got, still_waiting

    assert asyncio.run(scenario()) == (["a", "b"], 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_key_is_ever_reconciled_twice_at_once_and_no_change_is_lost(seed: int) -> None:
    """Eight reconcilers, twelve keys added at random moments, also while being reconciled."""
    rng = random.Random(seed)
    keys = [f"key-{i}" for i in range(12)]
    in_flight: set[str] = set()
    overlaps: list[str] = []
    added_at: dict[str, int] = {}
    started_at: dict[str, list[int]] = {k: [] for k in keys}
    tick = 0

    async def reconciler(queue: WorkQueue[str]) -> None:
        nonlocal tick
        while True:
            key = await queue.get()
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)
            tick += 1
            started_at[key].append(tick)
            for _ in range(rng.randint(1, 5)):
                await asyncio.sleep(0)
            in_flight.discard(key)
            queue.done(key)

    async def scenario() -> None:
        nonlocal tick
        queue: WorkQueue[str] = WorkQueue()
        workers = [asyncio.create_task(reconciler(queue)) for _ in range(8)]
        for _ in range(2000):
            key = rng.choice(keys)
            tick += 1
            added_at[key] = tick
            queue.add(key)
            for _ in range(rng.randint(0, 2)):
                await asyncio.sleep(0)
        while len(queue) or in_flight:
            await asyncio.sleep(0)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    asyncio.run(scenario())

    assert overlaps == [], f"keys reconciled twice at once: {sorted(set(overlaps))}"
    for key, last_add in added_at.items():
        assert started_at[key] and started_at[key][-1] > last_add, (
            f"{key} was added at {last_add} but last reconciled from {started_at[key][-1:]}"
        )


# --- One reconciler's loop -----------------------------------------------------------------


def test_a_failing_key_is_retried_with_its_backoff_which_resets_on_success() -> None:
    """Fails twice, then converges; the back-off counted both failures and was then reset."""
    backoff: ExponentialBackoff[str] = ExponentialBackoff(first_s=0.001, max_s=0.001)
    seen_failures: list[int] = []

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue(backoff)
        converged = asyncio.Event()

        async def reconcile(key: str) -> float | None:
            seen_failures.append(backoff.failures(key))
            if len(seen_failures) <= 2:
                raise RuntimeError("the API server is unreachable")
            converged.set()
            return None

        worker = asyncio.create_task(reconcile_forever(queue, reconcile))
        queue.add("a")
        await asyncio.wait_for(converged.wait(), timeout=10)
        for _ in range(3):
            await asyncio.sleep(0)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(scenario())

    assert seen_failures == [0, 1, 2]
    assert backoff.failures("a") == 0, "a converged key kept its failures"


def test_a_key_asking_to_be_looked_at_again_is_reconciled_again() -> None:
    runs: list[str] = []

    async def scenario() -> None:
        queue: WorkQueue[str] = WorkQueue()
        second = asyncio.Event()

        async def reconcile(key: str) -> float | None:
            runs.append(key)
            if len(runs) == 1:
                return 0.001  # e.g. a namesake's workflow is still being cancelled
            second.set()
            return None

        worker = asyncio.create_task(reconcile_forever(queue, reconcile))
        queue.add("a")
        await asyncio.wait_for(second.wait(), timeout=10)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(scenario())
    assert runs == ["a", "a"]
