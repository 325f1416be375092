"""Faults at load: 20 Certificates in flight while the worker (3x), the bridge and Temporal die.

The real stack's kube-apiserver, Pebble (behind an ACME proxy that counts new-orders) and
BIND9; the run's own Temporal dev server, ``acmeflow worker`` and ``acmeflow bridge`` as
separate processes started with their own command lines, SIGKILLed on a schedule driven
by progress and started again (``bench/harness/fault_scenario.py``, shared with
``bench/faults.py``). What a user would notice if a step were lost or done twice:

- a Certificate not Ready, or a Secret whose certificate lacks a name or its key;
- more than one Order for a Certificate, or more than one ACME order for an Order;
- a ``_acme-challenge`` TXT record or an HTTP-01 token left behind, a Challenge unfinished;
- a workflow failed, or an Order workflow still running. Certificate workflows run for
  as long as their Certificate exists (asleep until renewal): exactly one running run
  each, and earlier runs only continued-as-new; the Issuer's account workflow likewise.

No timing is asserted; the timeout only ends a run that hangs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from acmeflow.devstack.stack import StackInfo

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from harness.fault_scenario import run_faults  # noqa: E402

pytestmark = pytest.mark.stack

CERTIFICATES = 20
HANG_GUARD_S = 900.0


def test_certificates_in_flight_survive_kills_of_worker_bridge_and_temporal(
    stack: StackInfo, tmp_path: Path
) -> None:
    run = run_faults(stack, tmp_path, certificates=CERTIFICATES, timeout_s=HANG_GUARD_S)
    findings = run.findings
    assert findings is not None
    print("findings:", findings.counts())

    assert not run.timed_out, f"not all Ready within {HANG_GUARD_S:.0f}s: {findings.problems()}"
    assert run.missed_kills == [], "every kill must hit Certificates in flight"
    assert run.kills_by_target() == {"worker": 3, "bridge": 1, "temporal": 1}
    assert all(k.killed_pid != k.started_pid for k in run.kills)
    assert findings.steps_redone, "the worker kills must interrupt steps in flight"
    assert findings.problems() == []
    assert findings.ready == CERTIFICATES
    assert findings.orders == CERTIFICATES
    assert findings.new_orders == CERTIFICATES
    # 7 HTTP-01, 7 DNS-01 and 6 wildcard-plus-apex Certificates: 26 challenges.
    assert findings.challenges == 26
    counts = findings.workflow_counts()
    assert counts["OrderWorkflow"] == {"COMPLETED": CERTIFICATES}
    assert counts["CertificateWorkflow"].get("RUNNING") == CERTIFICATES
