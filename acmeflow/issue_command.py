"""``acmeflow issue``: obtain a certificate through an ``OrderWorkflow``, no Kubernetes.

Defaults come from the embedded stack (``acmeflow dev up``): its Pebble, its BIND9 for
DNS-01, its HTTP-01 responder. The private key is generated here and written to
``--out`` before the order starts; it never travels through Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import ipaddress
import sys
import uuid
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowQueryFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from acmeflow.activities.csr import build_csr, generate_private_key, private_key_pem
from acmeflow.contracts.issuer import (
    ExternalAccountBinding,
    Http01Ingress,
    IssuerConfig,
    Rfc2136,
    SolverConfig,
)
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.progress import EventType, OrderEvent, OrderProgress
from acmeflow.contracts.secrets import SecretRef
from acmeflow.contracts.states import ChallengeState, ChallengeType
from acmeflow.devstack.stack import MANIFEST, StackInfo, default_state_dir
from acmeflow.plumbing.temporal_connection import connect
from acmeflow.worker.build import build_worker
from acmeflow.worker.config import WorkerConfig, load_config
from acmeflow.workflows.order import OrderInput, OrderResult, OrderWorkflow

SOLVER_FLAGS: dict[str, ChallengeType] = {
    "http01": ChallengeType.HTTP01,
    "dns01": ChallengeType.DNS01,
}
"""``--solver`` values, named like an Issuer's ``solvers[].http01`` and ``.dns01``."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("issue", help="issue a certificate for NAMEs (no Kubernetes)")
    parser.add_argument("names", nargs="+", help="DNS names (or IP addresses) to certify")
    parser.add_argument("--server", help="ACME directory URL (default: the dev stack's Pebble)")
    parser.add_argument("--ca-bundle", type=Path, help="CA bundle to trust for the ACME server")
    parser.add_argument(
        "--solver",
        action="append",
        choices=list(SOLVER_FLAGS),
        help="challenge solvers, in order of preference (default: both)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("certs"),
        help="directory for tls.crt and tls.key (default ./certs)",
    )
    parser.add_argument("--email", default="", help="contact for the ACME account")
    parser.add_argument("--account-key", type=Path, help="account key file (created when missing)")
    parser.add_argument("--eab-kid", default="", help="External Account Binding key ID")
    parser.add_argument(
        "--eab-hmac-key-file", type=Path, help="file holding the EAB HMAC key (base64url)"
    )
    parser.add_argument("--key-algorithm", default="ECDSA", choices=["RSA", "ECDSA", "Ed25519"])
    parser.add_argument("--rfc2136-nameserver", help="DNS-01 nameserver host:port")
    parser.add_argument("--tsig-key-name", help="DNS-01 TSIG key name")
    parser.add_argument("--tsig-secret-file", type=Path, help="file holding the TSIG secret")
    parser.add_argument("--tsig-algorithm", default="HMACSHA256")
    parser.add_argument("--state-dir", type=Path, help="dev stack state directory")
    parser.add_argument("--temporal-address", help="Temporal frontend (default: dev stack)")
    parser.add_argument(
        "--use-running-workers",
        action="store_true",
        help="leave the work to `acmeflow worker` processes on --task-queue",
    )
    parser.add_argument(
        "--task-queue",
        default="acmeflow",
        help="task queue of running workers (with --use-running-workers)",
    )
    parser.set_defaults(run=run)


def _stack(args: argparse.Namespace) -> StackInfo | None:
    state_dir = args.state_dir or default_state_dir()
    return StackInfo.load(state_dir) if (state_dir / MANIFEST).exists() else None


def _identifiers(names: RequestedNames) -> list[str]:
    return names.dns_names + names.ip_addresses


def _requested(names: list[str]) -> RequestedNames:
    dns_names, ips = [], []
    for name in names:
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns_names.append(name.lower())
    return RequestedNames(dns_names=dns_names, ip_addresses=ips)


def issuer_from_args(args: argparse.Namespace, stack: StackInfo | None) -> IssuerConfig:
    server = args.server or (stack.acme_directory_url if stack else None)
    if not server:
        raise SystemExit("acmeflow issue: no --server and no dev stack (acmeflow dev up)")
    ca_bundle = args.ca_bundle or (stack.acme_ca_bundle if stack and not args.server else None)
    state = stack.state_dir if stack else Path.home() / ".local/state/acmeflow"
    account_key = args.account_key or (
        state / "accounts" / f"{hashlib.sha256(server.encode()).hexdigest()[:12]}.pem"
    )
    solvers = []
    for flag in args.solver or list(SOLVER_FLAGS):
        if SOLVER_FLAGS[flag] is ChallengeType.HTTP01:
            solvers.append(SolverConfig(http01=Http01Ingress()))
            continue
        nameserver = args.rfc2136_nameserver or (stack.dns_address if stack else None)
        if not nameserver:
            raise SystemExit("acmeflow issue: DNS-01 needs --rfc2136-nameserver")
        key_name = args.tsig_key_name or (stack.tsig_key_name if stack else "")
        secret_file = args.tsig_secret_file or (stack.tsig_secret_path if stack else None)
        solvers.append(
            SolverConfig(
                dns01=Rfc2136(
                    nameserver=nameserver,
                    tsig_key_name=key_name,
                    tsig_secret=SecretRef(path=str(secret_file)) if secret_file else None,
                    tsig_algorithm=args.tsig_algorithm
                    if args.tsig_key_name or not stack
                    else stack.tsig_algorithm,
                )
            )
        )
    eab = None
    if args.eab_kid:
        if not args.eab_hmac_key_file:
            raise SystemExit("acmeflow issue: --eab-kid needs --eab-hmac-key-file")
        eab = ExternalAccountBinding(
            key_id=args.eab_kid, key_secret=SecretRef(path=str(args.eab_hmac_key_file))
        )
    return IssuerConfig(
        name="acmeflow-issue",
        server=server,
        email=args.email,
        account_key=SecretRef(path=str(account_key)),
        ca_bundle_pem=Path(ca_bundle).read_text() if ca_bundle else "",
        external_account_binding=eab,
        solvers=solvers,
    )


def worker_config(args: argparse.Namespace, stack: StackInfo | None) -> WorkerConfig:
    config = load_config()
    overrides: dict[str, object] = {}
    if args.temporal_address:
        overrides["temporal_address"] = args.temporal_address
    elif stack:
        overrides["temporal_address"] = stack.temporal_address
    if args.use_running_workers:
        overrides["task_queue"] = args.task_queue
    else:
        overrides["task_queue"] = f"acmeflow-issue-{uuid.uuid4().hex[:8]}"
    if stack:
        overrides.update(
            http01_store_dir=stack.http01_store,
            self_check_resolver=stack.dns_address,
            self_check_http01_port=stack.http01_port,
            self_check_dns_port=stack.ports.dns,
        )
    return config.model_copy(update=overrides)


class ProgressPrinter:
    """One line per new event, step or state, in the order they happened.

    A snapshot can hold several new events at once (the workflow outran the query); its
    ``step_after_events`` says where among them the current step began, so the step line
    goes there and not after events that came later. A new challenge reason alone (same
    step) is news of now: it follows the snapshot's events.
    """

    def __init__(self) -> None:
        self._events = 0
        self._step = ""
        self._last = ""

    def show(self, progress: OrderProgress) -> None:
        new = progress.events[self._events :]
        step = f"[{progress.state or 'starting'}] {progress.step}"
        waiting = [
            c.reason for c in progress.challenges if c.reason and c.state != ChallengeState.VALID
        ]
        line = f"{step} ({waiting[0]})" if waiting else step
        at = max(0, progress.step_after_events - self._events) if step != self._step else len(new)
        for event in new[:at]:
            self._print_event(event)
        if line != self._last:
            print(line, flush=True)
        for event in new[at:]:
            self._print_event(event)
        self._events, self._step, self._last = len(progress.events), step, line

    @staticmethod
    def _print_event(event: OrderEvent) -> None:
        marker = "!" if event.type == EventType.WARNING else "-"
        print(f"  {marker} {event.reason}: {event.message}", flush=True)


async def _follow(
    client: Client, workflow_id: str, order: OrderInput, config: WorkerConfig
) -> OrderResult:
    handle = await client.start_workflow(
        OrderWorkflow.run,
        order,
        id=workflow_id,
        task_queue=config.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"ACME order for {', '.join(_identifiers(order.names))}",
    )
    print(
        f"workflow {workflow_id} (see it with: temporal workflow describe -w {workflow_id})",
        flush=True,
    )
    printer = ProgressPrinter()
    result_task = asyncio.ensure_future(handle.result())
    while True:
        # A query racing the workflow's completion may fail; the next one will not.
        with contextlib.suppress(RPCError, WorkflowQueryFailedError):
            printer.show(await handle.query(OrderWorkflow.progress))
        if result_task.done():
            return await result_task
        await asyncio.wait({result_task}, timeout=0.3)


async def issue(args: argparse.Namespace) -> int:
    stack = _stack(args)
    issuer = issuer_from_args(args, stack)
    config = worker_config(args, stack)
    names = _requested(args.names)
    key = generate_private_key(args.key_algorithm)
    csr = build_csr(key, names)
    args.out.mkdir(parents=True, exist_ok=True)
    key_path = args.out / "tls.key"
    key_path.write_bytes(private_key_pem(key))
    key_path.chmod(0o600)
    order_name = (
        f"{(names.dns_names + names.ip_addresses)[0].replace('*', 'wildcard')}-"
        f"{int(hashlib.sha256(csr.encode()).hexdigest()[:8], 16)}"
    )
    order = OrderInput(order_name=order_name, issuer=issuer, request=csr, names=names)
    workflow_id = f"order/standalone/{order_name}"
    client = await connect(config)
    try:
        if args.use_running_workers:
            result = await _follow(client, workflow_id, order, config)
        else:
            async with build_worker(client, config):
                result = await _follow(client, workflow_id, order, config)
    except WorkflowFailureError as failure:
        cause = failure.cause
        print(f"order failed: {getattr(cause, 'message', None) or cause}", file=sys.stderr)
        return 1
    (args.out / "tls.crt").write_text(result.certificate)
    print(f"certificate written to {args.out / 'tls.crt'}, key to {key_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(issue(args))
