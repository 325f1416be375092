"""The bridge's typed configuration (same sources and precedence as the worker's)."""

from __future__ import annotations

from pathlib import Path

from acmeflow.k8s_bridge.work_queue import FIRST_RETRY_S, MAX_RETRY_S
from acmeflow.plumbing.settings import TemporalSettings


class BridgeConfig(TemporalSettings):
    """The ``acmeflow bridge`` process."""

    worker_task_queue: str = "acmeflow"
    """Task queue the acmeflow workers poll; Order workflows are started there."""
    bridge_task_queue: str = "acmeflow-bridge"
    """Task queue this bridge polls for workflow progress to mirror into Kubernetes."""
    kubeconfig: Path | None = None
    """Kubeconfig file; in-cluster service account when unset."""
    cluster_resource_namespace: str = "acmeflow"
    """Namespace holding the Secrets that ClusterIssuers name."""
    account_key_check_s: float = 300.0
    """How often each Ready issuer's workflow looks at its account key Secret for a key a
    user replaced (then a new account is registered and said); 0: only on a spec change."""
    resync_s: float = 60.0
    """Every this often each resource is listed again and each open order checked."""
    reconcilers: int = 8
    """Resources reconciled at once (never the same one twice at once)."""
    retry_first_s: float = FIRST_RETRY_S
    """A failed reconcile is retried after this long, doubling with each further failure."""
    retry_max_s: float = MAX_RETRY_S
    """Longest wait between retries of a resource whose reconcile keeps failing."""
    mirror_threads: int = 16
    """Progress snapshots written to Kubernetes at once."""
    external_issuer: bool = False
    """Sign cert-manager CertificateRequests whose issuerRef group is acmeflow.io (needs
    cert-manager's CRDs); when off, CertificateRequests are neither listed nor watched."""
    leader_elect: bool = False
    """Run as one of several replicas: only the holder of a coordination.k8s.io Lease
    reconciles and mirrors; the others stand by, warm. Off: this replica always leads."""
    leader_election_lease: str = "acmeflow-bridge"
    """Name of the Lease the replicas compete for."""
    leader_election_namespace: str = "acmeflow"
    """Namespace of the Lease (in-cluster: the pod's namespace, from the downward API)."""
    leader_election_lease_duration_s: int = 15
    """How long standbys wait after the last renewal they saw before taking the Lease."""
    leader_election_renew_deadline_s: float = 10.0
    """How long the leader keeps failing to renew before it stops leading (and exits)."""
    leader_election_retry_period_s: float = 2.0
    """Pause between attempts to acquire or renew the Lease."""
