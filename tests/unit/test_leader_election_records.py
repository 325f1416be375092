"""The Lease record rules of the bridge's leader election, without a server: who may take
the Lease when, and what a claim, a renewal and a release write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client

from acmeflow.k8s_bridge.leader_election import (
    LeaseObservation,
    LeaseTimings,
    claimed,
    micro_time,
    new_identity,
    released,
)

T0 = datetime(2026, 12, 2, 13, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 2, 13, 0, 2, 500000, tzinfo=UTC)


def held_by(holder: str, *, transitions: int = 3, renewed: datetime = T0) -> client.V1LeaseSpec:
    return client.V1LeaseSpec(
        holder_identity=holder,
        lease_duration_seconds=15,
        acquire_time=T0,
        renew_time=renewed,
        lease_transitions=transitions,
    )


def test_timings_must_leave_the_leader_time_to_stop_before_others_take_over() -> None:
    LeaseTimings(lease_duration_s=15, renew_deadline_s=10, retry_period_s=2)
    for durations in ((10, 10, 2), (15, 10, 10), (15, 10, 0)):
        with pytest.raises(ValueError, match="lease duration > renew deadline > retry period"):
            LeaseTimings(*durations)


def test_lease_times_always_serialize_with_the_fraction_the_api_server_needs() -> None:
    assert micro_time(T0).isoformat() == "2026-12-02T13:00:00.000001+00:00"
    assert micro_time(T1) == T1


def test_identities_of_one_pod_name_differ() -> None:
    first, second = new_identity("bridge-7d9f"), new_identity("bridge-7d9f")
    assert first.startswith("bridge-7d9f_") and second.startswith("bridge-7d9f_")
    assert first != second


def test_a_new_lease_starts_with_no_transitions() -> None:
    spec = claimed(None, "a", 15, T1)
    assert (spec.holder_identity, spec.lease_duration_seconds, spec.lease_transitions) == (
        "a",
        15,
        0,
    )
    assert spec.acquire_time == spec.renew_time == T1


def test_a_renewal_keeps_the_acquire_time_and_the_transitions() -> None:
    spec = claimed(held_by("a"), "a", 15, T1)
    assert spec.acquire_time == micro_time(T0)
    assert spec.renew_time == T1
    assert spec.lease_transitions == 3


def test_a_takeover_counts_a_transition_and_restarts_the_acquire_time() -> None:
    spec = claimed(held_by("a"), "b", 15, T1)
    assert spec.holder_identity == "b"
    assert spec.acquire_time == T1
    assert spec.lease_transitions == 4


def test_a_release_clears_the_holder_and_keeps_the_transitions() -> None:
    spec = released(held_by("a"), T1)
    assert spec.holder_identity is None
    assert spec.lease_duration_seconds == 1
    assert spec.lease_transitions == 3
    assert claimed(spec, "b", 15, T1).lease_transitions == 4


def test_a_held_lease_expires_by_the_observers_clock_since_it_last_changed() -> None:
    observed = LeaseObservation()
    assert observed.takeable_by("b", at=0.0)  # nothing seen yet: no Lease
    assert observed.observe(held_by("a"), at=100.0)
    assert not observed.takeable_by("b", at=114.9)
    # The same record read again does not move the observer's clock: still expiring.
    assert not observed.observe(held_by("a"), at=110.0)
    assert observed.takeable_by("b", at=115.0)
    # A renewal seen later restarts the wait, whatever the renewTime says.
    assert observed.observe(held_by("a", renewed=T1), at=114.0)
    assert not observed.takeable_by("b", at=128.9)
    assert observed.takeable_by("b", at=129.0)


def test_a_lease_is_takeable_when_free_or_already_ours() -> None:
    observed = LeaseObservation()
    observed.observe(held_by("a"), at=100.0)
    assert observed.takeable_by("a", at=100.0)
    observed.observe(released(held_by("a"), T1), at=101.0)
    assert observed.holder == ""
    assert observed.takeable_by("b", at=101.0)
