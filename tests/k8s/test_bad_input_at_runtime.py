"""Bad input that admission cannot see, answered in the Order's status and Events.

Every Order below is created at once in one namespace, next to a good Order, through the
real bridge and a worker: each bad one must end ``errored`` with a reason naming the
mistake and how to fix it (on the Order, in its ``OrderFailed`` Event, and on the Issuer
where the Issuer is the mistake), and the good one must still be issued.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acmeflow.devstack.pebble import PebbleOptions
from acmeflow.devstack.processes import free_port, stop_pid_file
from acmeflow.devstack.stack import StackInfo, start_extra_pebble
from tests.bridge.bridge_harness import (
    BridgeProcess,
    certificate_manifest,
    condition_of,
    describe_events,
    dns01_solver,
    issuer_manifest,
    tsig_secret,
    wait_for,
    wait_for_ready,
)
from tests.bridge.conftest import WorkerThread
from tests.k8s.bad_input import (
    HtmlSite,
    ed25519_csr,
    garbage_csr,
    opaque_secret,
    order_with_request,
    p256_csr,
    rsa_1024_csr,
    sha1_csr,
    tampered_csr,
)
from tests.k8s.kube_helpers import Kubectl, install_acmeflow_crds, temporary_namespace
from tests.orders.durability_gates import HoldingHttp01Gate

pytestmark = pytest.mark.stack

FINAL = ("valid", "invalid", "expired", "errored")
Manifest = dict[str, Any]


@dataclass(frozen=True)
class RuntimeCase:
    """One mistake: the Order's CSR, or the Issuer it names, and what the reason must say."""

    reason: tuple[str, ...]
    request: Callable[[list[str], Path], str] = lambda names, _: p256_csr(names)
    issuer: Callable[[StackInfo, str, str], Manifest] | None = None
    """Builds the Issuer (stack, namespace, name); the namespace's HTTP-01 Issuer when None."""
    secrets: tuple[Callable[[str], Manifest], ...] = field(default_factory=tuple)
    issuer_ready_says: str = ""
    """Part of the Issuer's Ready=False message, for mistakes in the Issuer itself."""
    challenge_event: str = ""
    """Reason of a Warning Event on the Order's Challenge."""


def _dns01_issuer(**rfc2136: Any) -> Callable[[StackInfo, str, str], Manifest]:
    def build(stack: StackInfo, namespace: str, name: str) -> Manifest:
        solver = dns01_solver(stack)
        solver["dns01"]["rfc2136"].update(rfc2136)
        return issuer_manifest(stack, namespace, name, solvers=[solver])

    return build


def _issuer_at(
    server: Callable[[StackInfo], str], *, trusted: bool = True, ca_bundle: bytes = b""
) -> Any:
    def build(stack: StackInfo, namespace: str, name: str) -> Manifest:
        manifest = issuer_manifest(stack, namespace, name, server=server(stack))
        if not trusted:
            del manifest["spec"]["acme"]["caBundle"]
        if ca_bundle:
            manifest["spec"]["acme"]["caBundle"] = base64.b64encode(ca_bundle).decode()
        return manifest

    return build


HTML_SITE: list[str] = []
"""URL of the module's HtmlSite (set by the ``outcomes`` fixture)."""
WRONG_TSIG = base64.b64encode(secrets.token_bytes(32)).decode()
REFUSED_UPDATE = "refused the update with TSIG key"

CASES: dict[str, RuntimeCase] = {
    "csr-not-pkcs10": RuntimeCase(
        ("the request is not a PEM certificate signing request",),
        request=lambda names, _: garbage_csr(names),
    ),
    "csr-signature-does-not-verify": RuntimeCase(
        ("signature is invalid", "altered after signing"),
        request=lambda names, _: tampered_csr(names),
    ),
    "csr-ed25519-key": RuntimeCase(
        ("the CSR's key is Ed25519: ACME CAs do not certify Ed25519 keys", "ECDSA P-256"),
        request=lambda names, _: ed25519_csr(names),
    ),
    "csr-rsa-1024-key": RuntimeCase(
        ("the CSR's RSA key has 1024 bits: CAs refuse RSA keys under 2048 bits",),
        request=lambda names, _: rsa_1024_csr(names),
    ),
    "csr-signed-with-sha1": RuntimeCase(
        ("the CSR is signed with SHA1", "openssl req -new -sha256"),
        request=sha1_csr,
    ),
    "csr-for-other-names": RuntimeCase(
        ("do not match the order's", "other.example.com"),
        request=lambda names, _: p256_csr(["other.example.com"]),
    ),
    "tsig-secret-key-missing": RuntimeCase(
        ('TSIG secret: key "absent" of Secret', "/tsig does not exist"),
        issuer=_dns01_issuer(tsigSecretSecretRef={"name": "tsig", "key": "absent"}),
        challenge_event="PresentError",
    ),
    "tsig-secret-missing": RuntimeCase(
        ('TSIG secret: key "secret" of Secret', "/no-such-secret does not exist"),
        issuer=_dns01_issuer(tsigSecretSecretRef={"name": "no-such-secret", "key": "secret"}),
        challenge_event="PresentError",
    ),
    "tsig-secret-not-base64": RuntimeCase(
        ("TSIG secret in", "is not base64"),
        issuer=_dns01_issuer(tsigSecretSecretRef={"name": "tsig-text", "key": "secret"}),
        secrets=(lambda ns: opaque_secret(ns, "tsig-text", {"secret": "hunter2 is my key"}),),
        challenge_event="PresentError",
    ),
    "tsig-secret-bind-rejects": RuntimeCase(
        (REFUSED_UPDATE, "(NOTAUTH, TSIG BADSIG): the TSIG secret does not match"),
        issuer=_dns01_issuer(tsigSecretSecretRef={"name": "tsig-wrong", "key": "secret"}),
        secrets=(lambda ns: opaque_secret(ns, "tsig-wrong", {"secret": WRONG_TSIG}),),
        challenge_event="PresentError",
    ),
    "tsig-key-name-bind-does-not-know": RuntimeCase(
        (f"{REFUSED_UPDATE} not-our-key (NOTAUTH, TSIG BADKEY)", "check tsigKeyName"),
        issuer=_dns01_issuer(tsigKeyName="not-our-key"),
        challenge_event="PresentError",
    ),
    "directory-url-serves-html": RuntimeCase(
        ("is not an ACME directory: it answered HTTP 200 with text/html", "Welcome to nginx!"),
        issuer=_issuer_at(lambda _: HTML_SITE[0]),
        issuer_ready_says="set spec.acme.server to the CA's ACME directory URL",
    ),
    "ca-tls-certificate-untrusted": RuntimeCase(
        ("is not trusted (unable to get local issuer certificate)", "caBundle", "skipTLSVerify"),
        issuer=_issuer_at(lambda stack: stack.acme_directory_url, trusted=False),
        issuer_ready_says="set spec.acme.caBundle to the base64 PEM of the CA that signs it",
    ),
}


@dataclass
class Outcome:
    """What a person sees of one Order: its status, its Events, its Issuer and Challenges."""

    order: Manifest
    events: list[tuple[str, str, str]]
    issuer: Manifest
    challenge_events: list[tuple[str, str, str]]


@pytest.fixture(scope="module")
def kubectl(stack: StackInfo) -> Kubectl:
    kubectl = Kubectl(stack)
    install_acmeflow_crds(kubectl)
    return kubectl


@pytest.fixture(scope="module")
def bridge(
    stack: StackInfo, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BridgeProcess]:
    """The bridge and an order worker, on this module's own task queues."""
    queue = uuid.uuid4().hex[:6]
    log = tmp_path_factory.mktemp("bridge") / "bridge.log"
    process = BridgeProcess(stack, f"orders-{queue}", f"bridge-{queue}", log)
    process.start()
    try:
        with WorkerThread(stack, f"orders-{queue}"):
            yield process
    finally:
        process.stop()
        print(f"bridge log ({log}):\n{process.log()[-4000:]}")


def _describe(kubectl: Kubectl, kind: str, name: str, namespace: str) -> list[tuple[str, str, str]]:
    return describe_events(kubectl("describe", kind, name, "-n", namespace).stdout)


def _final(kubectl: Kubectl, namespace: str, names: list[str]) -> dict[str, Manifest]:
    open_orders: list[str] = []

    def all_final() -> dict[str, Manifest] | None:
        listed = json.loads(kubectl("get", "orders", "-n", namespace, "-o", "json").stdout)
        orders = {o["metadata"]["name"]: o for o in listed["items"]}
        done = {n: o for n, o in orders.items() if o.get("status", {}).get("state") in FINAL}
        open_orders[:] = sorted(set(names) - done.keys())
        return None if open_orders else done

    try:
        found: dict[str, Manifest] = wait_for(all_final, "every Order to end", timeout_s=180)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; still open: {open_orders}") from timed_out
    return found


@pytest.fixture(scope="module")
def outcomes(
    stack: StackInfo,
    kubectl: Kubectl,
    bridge: BridgeProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Outcome]]:
    """Every case's Order, and a good one, created together; their state once all ended."""
    work_dir = tmp_path_factory.mktemp("bad-input")
    with HtmlSite(stack, work_dir) as site, temporary_namespace(kubectl, "bad-input") as ns:
        HTML_SITE[:] = [site.url]
        kubectl.create(tsig_secret(stack, ns))
        kubectl.create(issuer_manifest(stack, ns))
        orders = {"good": order_with_request(ns, "good", names := _names("good"), p256_csr(names))}
        for case_id, case in CASES.items():
            issuer = "pebble"
            if case.issuer is not None:
                issuer = f"issuer-{case_id}"
                kubectl.create(case.issuer(stack, ns, issuer))
            for secret in case.secrets:
                kubectl.create(secret(ns))
            names = _names(case_id)
            request = case.request(names, work_dir)
            orders[case_id] = order_with_request(ns, case_id, names, request, issuer=issuer)
        for manifest in orders.values():
            kubectl.create(manifest)
        ended = _final(kubectl, ns, list(orders))
        yield {
            case_id: Outcome(
                order=ended[case_id],
                events=_describe(kubectl, "order", case_id, ns),
                issuer=kubectl.get("issuer", order["spec"]["issuerRef"]["name"], namespace=ns),
                challenge_events=[
                    event
                    for challenge in _challenges(kubectl, ns, case_id)
                    for event in _describe(kubectl, "challenge", challenge, ns)
                ],
            )
            for case_id, order in orders.items()
        }


def _names(case_id: str) -> list[str]:
    return [f"{case_id}-{uuid.uuid4().hex[:6]}.example.com"]


def _challenges(kubectl: Kubectl, namespace: str, order: str) -> list[str]:
    listed = kubectl(
        "get", "challenges", "-n", namespace, "-l", f"acmeflow.io/order={order}",
        "-o", "jsonpath={.items[*].metadata.name}",
    )  # fmt: skip
    return listed.stdout.split()


@pytest.mark.parametrize("case_id", CASES)
def test_bad_input_ends_the_order_with_a_reason_a_person_can_act_on(
    outcomes: dict[str, Outcome], case_id: str
) -> None:
    case, outcome = CASES[case_id], outcomes[case_id]
    status = outcome.order["status"]
    assert status["state"] == "errored", status
    for fragment in case.reason:
        assert fragment in status["reason"], status["reason"]
    assert status["failureTime"]
    assert outcome.events[-1] == ("Warning", "OrderFailed", status["reason"])
    if case.issuer_ready_says:
        ready = condition_of(outcome.issuer, "Ready")
        assert ready["status"] == "False"
        assert ready["reason"] == "ErrRegisterACMEAccount"
        assert case.issuer_ready_says in ready["message"], ready["message"]
    if case.challenge_event:
        warnings = [e for e in outcome.challenge_events if e[0] == "Warning"]
        assert warnings, outcome.challenge_events
        assert warnings[0][1] == case.challenge_event
        assert case.reason[0] in warnings[0][2]


def test_the_good_order_beside_them_is_issued(outcomes: dict[str, Outcome]) -> None:
    status = outcomes["good"].order["status"]
    assert status["state"] == "valid", status
    assert "-----BEGIN CERTIFICATE-----" in status["certificate"]
    assert outcomes["good"].events[-1][:2] == ("Normal", "OrderValid")


def test_a_certificate_naming_a_missing_issuer_waits_and_says_so(
    kubectl: Kubectl, bridge: BridgeProcess
) -> None:
    with temporary_namespace(kubectl, "no-issuer") as ns:
        kubectl.create(certificate_manifest(ns, "web", _names("no-issuer"), issuer="typo"))
        waiting = wait_for_ready(kubectl, "certificate", ns, "web", status="False")
        orders = _order_names(kubectl, ns)
    ready = condition_of(waiting, "Ready")
    assert ready["reason"] == "IssuerNotReady"
    assert ready["message"] == (
        f'Waiting for Issuer "{ns}/typo" to exist; issuance starts as soon as it does'
    )
    assert orders == []


def test_an_issuer_whose_ca_bundle_is_no_pem_holds_its_order_with_the_reason(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess
) -> None:
    """Base64 passes admission; what it decodes to is checked by the bridge."""
    with temporary_namespace(kubectl, "bundle") as ns:
        build = _issuer_at(lambda s: s.acme_directory_url, ca_bundle=b"not a PEM certificate")
        kubectl.create(build(stack, ns, "bundle"))
        names = _names("bundle")
        kubectl.create(order_with_request(ns, "held", names, p256_csr(names), issuer="bundle"))
        issuer = wait_for_ready(kubectl, "issuer", ns, "bundle", status="False")
        order = wait_for(
            lambda: kubectl.get("order", "held", namespace=ns).get("status", {}).get("reason"),
            "the Order to say why it waits",
        )
    expected = (
        f"Issuer {ns}/bundle: caBundle decodes to no PEM certificate; "
        "expected -----BEGIN CERTIFICATE----- blocks"
    )
    ready = condition_of(issuer, "Ready")
    assert ready["reason"] == "ErrInvalidConfig"
    assert expected in ready["message"]
    assert order == f"Issuer {ns}/bundle cannot be used: {expected}"


def test_pebble_restarted_mid_order_fails_clearly_and_the_next_order_issues(
    stack: StackInfo, kubectl: Kubectl, bridge: BridgeProcess
) -> None:
    """Pebble keeps everything in memory: restarted while it validates, it has forgotten the
    order, its authorizations and the account. The Order ends with that reason; the next
    Order of the Certificate (a spec change skips the 1 h back-off) registers again, issues."""
    names = _names("restarted")
    port = free_port()
    with HoldingHttp01Gate(target_port=stack.http01_port) as gate:
        options = PebbleOptions(name="pebble-restarted")
        pebble, endpoints = start_extra_pebble(stack, options, http01_port=gate.port, port=port)
        try:
            with temporary_namespace(kubectl, "pebble-restart") as ns:
                kubectl.create(
                    issuer_manifest(stack, ns, "restarting", server=endpoints.directory_url)
                )
                kubectl.create(certificate_manifest(ns, "web", names, issuer="restarting"))
                wait_for(lambda: gate.waiting, "Pebble's validation to be held at the gate")
                stop_pid_file(pebble.pid_path)
                pebble, endpoints = start_extra_pebble(
                    stack, options, http01_port=gate.port, port=port
                )
                gate.release()
                [first] = _final(kubectl, ns, _order_names(kubectl, ns)).values()
                failed = wait_for(
                    lambda: _ready_says(kubectl, ns, "web", first["status"]["reason"]),
                    "the Certificate to carry the Order's reason",
                )
                kubectl("patch", "certificate", "web", "-n", ns, "--type=merge", "-p",
                        json.dumps({"spec": {"renewBefore": "700h"}}))  # fmt: skip
                wait_for(lambda: len(_order_names(kubectl, ns)) == 2, "the next Order")
                ended = _final(kubectl, ns, _order_names(kubectl, ns))
                issued = wait_for_ready(kubectl, "certificate", ns, "web")
                events = _describe(kubectl, "certificate", "web", ns)
        finally:
            stop_pid_file(pebble.pid_path)

    reason = first["status"]["reason"]
    assert first["status"]["state"] == "errored"
    assert "(accountDoesNotExist)" in reason
    assert "the CA lost its data, as a restarted Pebble does" in reason
    assert "registers the account again for the next order" in reason
    ready = condition_of(failed, "Ready")
    assert ready["status"] == "False"
    assert reason in ready["message"] and "will be retried" in ready["message"]
    [second] = [o for name, o in ended.items() if name != first["metadata"]["name"]]
    assert second["status"]["state"] == "valid", second["status"]
    assert condition_of(issued, "Ready")["status"] == "True"
    assert [e[1] for e in events].count("OrderCreated") == 2
    assert ("Warning", "Failed") in [e[:2] for e in events]


def _ready_says(kubectl: Kubectl, namespace: str, name: str, reason: str) -> Manifest | None:
    certificate = kubectl.get("certificate", name, namespace=namespace)
    return certificate if reason in condition_of(certificate, "Ready").get("message", "") else None


def _order_names(kubectl: Kubectl, namespace: str) -> list[str]:
    listed = kubectl("get", "orders", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}")
    return listed.stdout.split()
