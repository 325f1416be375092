"""DNS-01 per provider: time to Ready for 1 Certificate and for 50 at once, in one run.

On the embedded stack with ``acmeflow worker`` and ``acmeflow bridge`` running (as
``acmeflow dev up`` runs them), each provider path of tests/dns01/provider_cases.py gets,
per size, a fresh namespace with an Issuer on the stack's Pebble whose one solver is that
provider's (RFC 2136 into BIND9; acmeflow's cert-manager webhook into BIND9 through the
API server's aggregation layer; Route53 in moto, mirrored into BIND9 so Pebble can resolve
it; dns-lexicon's ``powerdns`` provider into PowerDNS). Once the Issuer is Ready and one
warm-up Certificate has been issued (neither is measured), N Certificates are created at
once, each for one name ``bench-<run>-<i>.<provider's zone>`` with an ECDSA P-256 key, and
a watch notes when each first shows ``Ready=True``. The run and its figures are
bench/k8s_certificates.py's (bench/harness/kube_run.py underneath): time to Ready from
the API server acknowledging a create to the watch seeing Ready, p50 and p95, wall time,
throughput, CPU and memory of the stack.

The provider cases are the tests' own (tests/dns01/), so the benchmark measures exactly
what the tests prove. The end sets providers and sizes side by side; the last line is one
JSON object (per provider and size, the main figures).

    .venv/bin/python bench/dns01_providers.py [--sizes 1 50] [--providers rfc2136 ...]
                                              [--state-dir DIR] [--timeout-s 900]
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # last, so nothing of bench/ is shadowed

from harness import kube_run  # noqa: E402
from harness.acmeflow_api import StackInfo, crds  # noqa: E402
from harness.kube import Kube, create_object, metadata, read_object  # noqa: E402
from harness.stack import (  # noqa: E402
    acmeflow_stack,
    argument_parser,
    print_json_line,
    stack_pids,
    stop_on_sigterm,
)
from k8s_certificates import Certificates, report, settle, wait_ready  # noqa: E402

from tests.bridge.bridge_harness import issuer_manifest  # noqa: E402
from tests.dns01.provider_cases import BY_NAME, CASES, ProviderCase  # noqa: E402
from tests.dns01.route53_stack import Route53Mirror, Route53Zone, hosted_zone_id, route53_client  # noqa: E402

SIZES = (1, 50)


class ProviderCertificates(Certificates):
    """bench/k8s_certificates.py's run, through one provider's Issuer in its zone."""

    def __init__(self, case: ProviderCase, stack: StackInfo) -> None:
        self.case = case
        self.stack = stack
        self.described = f"Certificates (ECDSA P-256 keys) by DNS-01 through {case.name}"

    def certificate(self, namespace: str, name: str) -> crds.Certificate:
        spec = crds.CertificateSpec(
            secret_name=f"{name}-tls",
            dns_names=[f"{name}.{self.case.zone}"],
            issuer_ref=crds.IssuerRef(name=self.case.name, kind="Issuer"),
            private_key=crds.PrivateKeySpec(algorithm="ECDSA"),
        )
        return crds.Certificate(metadata=metadata(namespace, name), spec=spec)

    def prepare(self, kube: Kube, namespace: str, run_id: str) -> None:
        """The provider's Secrets and Issuer, Ready, and one Certificate issued through it."""
        stack = self.stack
        solver, secrets = self.case.issuer_solver(stack, namespace)
        for secret in secrets:
            kube.core.create_namespaced_secret(namespace, secret)
        issuer = issuer_manifest(stack, namespace, self.case.name, solvers=[solver])
        kube.custom.create_namespaced_custom_object(
            "acmeflow.io", "v1alpha1", namespace, crds.Issuer.PLURAL, issuer
        )
        issuer_s = wait_ready(
            lambda: read_object(kube, crds.Issuer, namespace, self.case.name),
            f"Issuer {self.case.name}",
        )
        name = f"warmup-{run_id}"
        create_object(kube, self.certificate(namespace, name))
        warm_s = wait_ready(
            lambda: read_object(kube, crds.Certificate, namespace, name),
            f"warm-up Certificate {name}",
        )
        print(f"  Issuer Ready after {issuer_s:.1f}s, warm-up Certificate after {warm_s:.1f}s")

    def objects(self, namespace: str, run_id: str, count: int) -> list[crds.KubeResource]:
        return [self.certificate(namespace, f"bench-{run_id}-{i}") for i in range(count)]


@contextmanager
def route53_mirrored(stack: StackInfo) -> Iterator[None]:
    """moto's record sets copied into BIND9 while the run lasts (Pebble resolves there)."""
    zone = Route53Zone(stack.moto_url, hosted_zone_id(route53_client(stack.moto_url)))
    mirror = Route53Mirror(zone, stack)
    thread = threading.Thread(target=mirror.run, name="route53-mirror", daemon=True)
    thread.start()
    try:
        yield
    finally:
        mirror.stop()
        thread.join(timeout=5)
        if mirror.errors:
            print(f"route53 mirror errors: {mirror.errors[-3:]}")


KEYS = (
    "certificates",
    "ready",
    "failed",
    "timed_out",
    "time_to_ready_p50_s",
    "time_to_ready_p95_s",
    "time_to_ready_max_s",
    "wall_s",
    "certificates_per_s",
    "stack_cpu_ms_per_certificate",
    "worker_peak_rss_mb",
    "machine_busy",
    "other_cpu_s",
)


def print_side_by_side(results: dict[str, dict[int, dict[str, Any]]]) -> None:
    print()
    print("providers side by side (time to Ready: create acknowledged -> watch saw Ready):")
    print(
        f"  {'provider':<18}{'at once':>8}{'Ready':>8}{'p50 s':>9}{'p95 s':>9}{'max s':>9}"
        f"{'wall s':>9}{'per s':>8}{'CPU ms/cert':>13}"
    )
    for name, sizes in results.items():
        for count, f in sizes.items():
            print(
                f"  {name:<18}{count:>8}{f['ready']:>5}/{count:<2}{f['time_to_ready_p50_s']:>9.2f}"
                f"{f['time_to_ready_p95_s']:>9.2f}{f['time_to_ready_max_s']:>9.2f}"
                f"{f['wall_s']:>9.1f}{f['certificates_per_s']:>8.2f}"
                f"{f['stack_cpu_ms_per_certificate']:>13}"
            )


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument(
        "--providers", nargs="+", choices=sorted(BY_NAME), default=[c.name for c in CASES]
    )
    parser.add_argument("--timeout-s", type=float, default=900.0, help="per run")
    args = parser.parse_args()
    stop_on_sigterm()
    results: dict[str, dict[int, dict[str, Any]]] = {}
    with acmeflow_stack(args.state_dir, with_acmeflow=True) as stack, route53_mirrored(stack):
        for name in args.providers:
            scenario = ProviderCertificates(BY_NAME[name], stack)
            for count in args.sizes:
                settle(stack_pids(stack))
                run = kube_run.run_benchmark(stack, scenario, count=count, timeout_s=args.timeout_s)
                figures = report(run)
                results.setdefault(name, {})[count] = figures
                print_json_line({"provider": name, **figures})
    print_side_by_side(results)
    print_json_line(
        {
            "providers": {
                name: {str(count): {k: f[k] for k in KEYS} for count, f in sizes.items()}
                for name, sizes in results.items()
            },
            **{
                f"{name}_{count}_{key}": f[key]
                for name, sizes in results.items()
                for count, f in sizes.items()
                for key in ("ready", "time_to_ready_p50_s", "time_to_ready_p95_s")
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
