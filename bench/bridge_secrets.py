"""Bridge memory with many unrelated Secrets: it watches acmeflow's TLS Secrets only.

The bridge watches Secrets by acmeflow's label (``acmeflow.io/certificate-name``) so that
a user deleting or spoiling a TLS Secret is answered at once; the API server filters by
the label, so Secrets that are not acmeflow's never reach it. This script shows that its
memory stays flat however many other Secrets the cluster holds.

On the embedded stack with ``acmeflow worker`` and ``acmeflow bridge`` running, it prints
the bridge's resident memory (VmRSS, and the peak VmHWM reset before each phase):

1. idle, after start-up;
2. with its normal workload: an Issuer and ``--certificates`` Certificates issued and Ready;
3. after ``--secrets`` unrelated Secrets (2 KB of data each, like a TLS Secret; default
   20,000) were created in a namespace of their own, and ``--settle-s`` passed (longer
   than a resync period, when a bridge that listed them would list them again);
4. once more after the normal workload with them in place: one Certificate's TLS Secret
   deleted, and the seconds until the Secret holds a new certificate (its reissue).

For scale it prints what one list of every Secret of the cluster weighs (the bytes of
the API server's answer), which a bridge watching all Secrets would hold and more. The
last line is one JSON object with the figures.

    .venv/bin/python bench/bridge_secrets.py [--secrets 20000] [--certificates 5]
                                             [--state-dir DIR]
"""

from __future__ import annotations

import base64
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.acmeflow_api import crds
from harness.kube import (
    CREATE_THREADS,
    Kube,
    create_object,
    delete_namespace,
    kube_clients,
    read_object,
    run_namespace,
)
from harness.processes import proc_status_kb, reset_peak_rss
from harness.stack import (
    acmeflow_stack,
    argument_parser,
    print_json_line,
    stack_pids,
    stop_on_sigterm,
)
from k8s_certificates import certificate, wait_ready
from kubernetes.client.exceptions import ApiException

REISSUE_TIMEOUT_S = 180.0
SECRET_DATA = base64.b64encode(os.urandom(2048)).decode()


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    return (proc_status_kb(pid, "VmRSS") or 0) / 1024, (proc_status_kb(pid, "VmHWM") or 0) / 1024


def phase(name: str, pid: int, figures: dict[str, Any]) -> None:
    rss, peak = rss_mb(pid)
    figures[f"bridge_rss_mb_{name}"] = round(rss, 1)
    figures[f"bridge_peak_rss_mb_{name}"] = round(peak, 1)
    print(f"  bridge {name}: RSS {rss:.1f} MB (peak since the last phase {peak:.1f} MB)")
    reset_peak_rss(pid)


def issue_certificates(kube: Kube, namespace: str, count: int, run_id: str) -> list[str]:
    names = [f"secrets-{run_id}-{i}" for i in range(count)]
    for name in names:
        create_object(kube, certificate(namespace, name))
    for name in names:
        wait_ready(lambda n=name: read_object(kube, crds.Certificate, namespace, n), name)
    return names


def create_unrelated_secrets(kube: Kube, namespace: str, count: int) -> float:
    """``count`` Opaque Secrets nobody labelled for acmeflow; seconds it took."""
    kube.core.create_namespace({"metadata": {"name": namespace}})
    started = time.monotonic()

    def create(i: int) -> None:
        body = {"metadata": {"name": f"unrelated-{i}"}, "data": {"blob": SECRET_DATA}}
        kube.core.create_namespaced_secret(namespace, body)

    with ThreadPoolExecutor(max_workers=CREATE_THREADS) as pool:
        for done, _ in enumerate(pool.map(create, range(count)), 1):
            if done % 5000 == 0:
                print(f"  {done} Secrets created", flush=True)
    return time.monotonic() - started


def all_secrets_bytes(kube: Kube) -> int:
    """The size of one answer listing every Secret of the cluster."""
    response = kube.core.list_secret_for_all_namespaces(_preload_content=False)
    return len(response.data)


def reissue_s(kube: Kube, namespace: str, name: str) -> float:
    """Delete the Certificate's TLS Secret; seconds until it holds a certificate again."""
    secret = f"{name}-tls"
    kube.core.delete_namespaced_secret(secret, namespace)
    deleted = time.monotonic()
    while time.monotonic() - deleted < REISSUE_TIMEOUT_S:
        try:
            if (kube.core.read_namespaced_secret(secret, namespace).data or {}).get("tls.crt"):
                return time.monotonic() - deleted
        except ApiException as error:
            if error.status != 404:
                raise
        time.sleep(0.2)
    raise SystemExit(f"Secret {namespace}/{secret} not reissued after {REISSUE_TIMEOUT_S:.0f}s")


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--secrets", type=int, default=20_000, help="unrelated Secrets")
    parser.add_argument("--certificates", type=int, default=5, help="the normal workload")
    parser.add_argument(
        "--settle-s",
        type=float,
        default=70.0,
        help="wait after the Secrets are created: past the bridge's resync (60 s by default)",
    )
    args = parser.parse_args()
    stop_on_sigterm()
    figures: dict[str, Any] = {"unrelated_secrets": args.secrets}
    with acmeflow_stack(args.state_dir, with_acmeflow=True) as stack:
        kube = kube_clients(stack)
        pid = stack_pids(stack, ["acmeflow-bridge"])["acmeflow-bridge"]
        run_id = uuid.uuid4().hex[:6]
        namespace, unrelated = f"bench-secrets-{run_id}", f"bench-unrelated-{run_id}"
        phase("idle", pid, figures)
        with run_namespace(kube, stack, namespace, gone_timeout_s=300):
            names = issue_certificates(kube, namespace, args.certificates, run_id)
            phase("with_certificates", pid, figures)
            try:
                figures["create_secrets_s"] = round(
                    create_unrelated_secrets(kube, unrelated, args.secrets), 1
                )
                time.sleep(args.settle_s)
                phase("with_unrelated_secrets", pid, figures)
                figures["reissue_after_delete_s"] = round(reissue_s(kube, namespace, names[0]), 2)
                wait_ready(
                    lambda: read_object(kube, crds.Certificate, namespace, names[0]), names[0]
                )
                phase("after_reissue", pid, figures)
                figures["all_secrets_list_mb"] = round(all_secrets_bytes(kube) / 1e6, 1)
            finally:
                delete_namespace(kube, unrelated, timeout_s=600)
    growth = (
        figures["bridge_rss_mb_with_unrelated_secrets"] - figures["bridge_rss_mb_with_certificates"]
    )
    figures["bridge_rss_growth_mb"] = round(growth, 1)
    print(
        f"{args.secrets} unrelated Secrets ({figures['all_secrets_list_mb']} MB as one list): "
        f"bridge RSS {figures['bridge_rss_mb_with_certificates']} -> "
        f"{figures['bridge_rss_mb_with_unrelated_secrets']} MB ({growth:+.1f} MB); "
        f"a deleted TLS Secret was reissued after {figures['reissue_after_delete_s']} s"
    )
    print_json_line(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
