"""``acmeflow convert-issuer``: the mapping (pure), then the command as a person runs it."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
import temporalio.converter
import yaml

from acmeflow.contracts.issuer import IssuerConfig
from acmeflow.convert_issuer import Conversion, convert, convert_stream
from acmeflow.crds.models import API_VERSION, ClusterIssuer, Issuer, IssuerSpec, ParentRef
from acmeflow.k8s_bridge.issuer_translation import issuer_config_from_spec
from tests.k8s.cert_manager_dialect import (
    REALISTIC_SPECS,
    REFUSED_FIELDS,
    with_refused,
    zerossl_eab_dns01,
)

CERT_MANAGER = "cert-manager.io/v1"


def cert_manager_issuer(
    spec: dict[str, Any], *, kind: str = "Issuer", name: str = "letsencrypt"
) -> dict[str, Any]:
    """As ``kubectl get -o yaml`` prints it: server-set metadata and status included."""
    metadata: dict[str, Any] = {
        "name": name,
        "uid": "6f1c0a34-0000-4000-8000-000000000001",
        "resourceVersion": "4711",
        "generation": 3,
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "labels": {"team": "platform"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"..."}',
            "owner": "platform@example.com",
        },
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    }
    if kind == "Issuer":
        metadata["namespace"] = "web"
    return {
        "apiVersion": CERT_MANAGER,
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
        "status": {"acme": {"uri": "https://acme.example/acct/1"}, "conditions": []},
    }


def losses_by_path(conversion: Conversion) -> dict[str, str]:
    return {loss.path: loss.why for loss in conversion.losses}


@pytest.mark.parametrize("kind", ["Issuer", "ClusterIssuer"])
@pytest.mark.parametrize("name", sorted(REALISTIC_SPECS))
def test_a_cert_manager_acme_issuer_converts_with_its_spec_unchanged(kind: str, name: str) -> None:
    spec = REALISTIC_SPECS[name]()

    conversion = convert(cert_manager_issuer(copy.deepcopy(spec), kind=kind))

    assert conversion.losses == []
    assert conversion.converted is not None
    assert conversion.converted["apiVersion"] == API_VERSION
    assert conversion.converted["kind"] == kind
    assert conversion.converted["spec"] == spec
    model = Issuer if kind == "Issuer" else ClusterIssuer
    model.model_validate(conversion.converted)


def test_metadata_keeps_what_a_person_wrote_and_drops_what_the_server_set() -> None:
    converted = convert(cert_manager_issuer(zerossl_eab_dns01())).converted

    assert converted is not None
    assert converted["metadata"] == {
        "name": "letsencrypt",
        "namespace": "web",
        "labels": {"team": "platform"},
        "annotations": {"owner": "platform@example.com"},
    }
    assert "status" not in converted


def test_a_cluster_issuer_says_where_acmeflow_reads_its_secrets() -> None:
    conversion = convert(cert_manager_issuer(zerossl_eab_dns01(), kind="ClusterIssuer"))

    assert conversion.converted is not None
    assert "namespace" not in conversion.converted["metadata"]
    notes = [line for line in conversion.report() if "note:" in line]
    assert len(notes) == 1
    assert notes[0].startswith("ClusterIssuer letsencrypt: spec.acme: note: ")
    assert "--cluster-resource-namespace cert-manager" in notes[0]


def test_a_cloud_dns_solver_is_carried_with_a_note_on_what_lexicon_reads() -> None:
    conversion = convert(cert_manager_issuer(REALISTIC_SPECS["cloud-providers-dns01"]()))

    assert conversion.losses == []
    assert conversion.report() == [
        "Issuer web/letsencrypt: spec.acme.solvers[0].dns01.cloudDNS: note: acmeflow reaches "
        "Cloud DNS through dns-lexicon, which works in the service account's own project "
        "(project_id in its key, so project must be that one) and picks the public managed "
        "zone by DNS name (hostedZoneName is kept but not used)"
    ]


@pytest.mark.parametrize("case", sorted(REFUSED_FIELDS))
def test_a_refused_field_is_left_out_with_the_reason_admission_gives(case: str) -> None:
    refused = REFUSED_FIELDS[case]

    conversion = convert(cert_manager_issuer(with_refused(refused)))

    assert conversion.converted is not None, conversion.report()
    converted_spec = conversion.converted["spec"]
    if refused.drops_solver:
        solver = refused.field_path.split(".dns01", 1)[0]
        why = losses_by_path(conversion)[solver]
        assert why.startswith("solver left out, its names go to the other solvers: ")
        # The DNS-01 solver is gone; the HTTP-01 one is now first.
        assert [list(s)[-1] for s in converted_spec["acme"]["solvers"]] == ["http01"]
    else:
        why = losses_by_path(conversion)[refused.field_path]
        *parent, field = _keys(refused.field_path)
        assert field not in _at(conversion.converted, parent)
    assert refused.message in why
    Issuer.model_validate(conversion.converted)


def _keys(field_path: str) -> list[str | int]:
    """``spec.acme.solvers[1].dns01`` as keys: spec, acme, solvers, 1, dns01."""
    keys: list[str | int] = []
    for part in field_path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    return keys


def _at(document: Any, keys: list[str | int]) -> Any:
    for key in keys:
        document = document[key]
    return document


def test_a_field_acmeflow_does_not_know_is_named_and_left_out() -> None:
    spec = zerossl_eab_dns01()
    spec["acme"]["solvers"][1]["http01"]["ingress"]["tlsPassthrough"] = True
    spec["acme"]["accountURI"] = "https://acme.example/acct/1"

    conversion = convert(cert_manager_issuer(spec))

    unknown = "not a field acmeflow knows; left out"
    assert losses_by_path(conversion) == {
        "spec.acme.solvers[1].http01.ingress.tlsPassthrough": unknown,
        "spec.acme.accountURI": unknown,
    }
    assert conversion.converted is not None
    assert conversion.converted["spec"] == zerossl_eab_dns01()


def test_cert_manager_s_implied_hmac_md5_is_written_out() -> None:
    spec = zerossl_eab_dns01()
    del spec["acme"]["solvers"][0]["dns01"]["rfc2136"]["tsigAlgorithm"]

    conversion = convert(cert_manager_issuer(spec))

    assert conversion.converted is not None
    rfc2136 = conversion.converted["spec"]["acme"]["solvers"][0]["dns01"]["rfc2136"]
    assert rfc2136["tsigAlgorithm"] == "HMACMD5"
    assert conversion.losses == []
    assert [note.path for note in conversion.notes] == [
        "spec.acme.solvers[0].dns01.rfc2136.tsigAlgorithm"
    ]


def test_an_eab_key_algorithm_cert_manager_ignores_becomes_the_hs256_it_uses() -> None:
    spec = zerossl_eab_dns01()
    spec["acme"]["externalAccountBinding"]["keyAlgorithm"] = "HS512"

    conversion = convert(cert_manager_issuer(spec))

    assert conversion.converted is not None
    assert conversion.converted["spec"] == zerossl_eab_dns01()
    assert [note.path for note in conversion.notes] == [
        "spec.acme.externalAccountBinding.keyAlgorithm"
    ]
    assert "cert-manager signs every binding with HS256" in conversion.notes[0].why


def test_an_unsigned_rfc2136_solver_gets_no_algorithm() -> None:
    spec = REALISTIC_SPECS["pebble-dev"]()

    conversion = convert(cert_manager_issuer(spec))

    assert conversion.converted is not None
    assert conversion.converted["spec"] == spec
    assert conversion.notes == []


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"ca": {"secretName": "root-ca"}}, "spec.ca"),
        ({"selfSigned": {}}, "spec.selfSigned"),
        ({"vault": {"server": "https://vault.example", "path": "pki/sign/web"}}, "spec.vault"),
        ({"venafi": {"zone": "DevOps\\Web"}}, "spec.venafi"),
    ],
)
def test_an_issuer_that_is_not_acme_is_not_converted(spec: dict[str, Any], where: str) -> None:
    conversion = convert(cert_manager_issuer(spec))

    assert conversion.converted is None
    assert list(losses_by_path(conversion)) == [where]
    assert "acmeflow issues certificates only from ACME CAs" in conversion.losses[0].why


def test_other_documents_are_skipped_with_a_line_each() -> None:
    certificate = {"apiVersion": CERT_MANAGER, "kind": "Certificate", "metadata": {"name": "c"}}
    old_issuer = {
        **cert_manager_issuer(zerossl_eab_dns01()),
        "apiVersion": "cert-manager.io/v1alpha2",
    }

    conversions = [convert(certificate), convert(old_issuer)]

    assert [c.converted for c in conversions] == [None, None]
    assert [c.report() for c in conversions] == [
        [
            "Certificate c: (document): not a cert-manager.io/v1 Issuer or ClusterIssuer "
            "(apiVersion cert-manager.io/v1, kind Certificate); skipped"
        ],
        [
            "Issuer web/letsencrypt: (document): not a cert-manager.io/v1 Issuer or "
            "ClusterIssuer (apiVersion cert-manager.io/v1alpha2, kind Issuer); skipped"
        ],
    ]


def test_a_value_acmeflow_cannot_hold_skips_the_document_rather_than_write_it() -> None:
    spec = zerossl_eab_dns01()
    spec["acme"]["solvers"][1]["http01"]["ingress"]["serviceType"] = "LoadBalancer"

    conversion = convert(cert_manager_issuer(spec))

    assert conversion.converted is None
    assert "not admissible, skipped" in conversion.report()[0]
    assert "serviceType" in conversion.report()[0]


def test_a_kubectl_list_is_unrolled() -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            cert_manager_issuer(zerossl_eab_dns01(), name="a"),
            cert_manager_issuer(REALISTIC_SPECS["letsencrypt-http01"](), name="b"),
        ],
    }

    conversions = convert_stream(yaml.safe_dump(listing))

    assert [c.source for c in conversions] == ["Issuer web/a", "Issuer web/b"]
    assert all(c.converted is not None for c in conversions)


# --- What the bridge makes of the dialect --------------------------------------------------


@pytest.mark.parametrize("name", sorted(REALISTIC_SPECS))
def test_the_bridge_translates_every_pasted_spec(name: str) -> None:
    spec = IssuerSpec.model_validate(REALISTIC_SPECS[name]())

    config = issuer_config_from_spec(spec, name=f"Issuer web/{name}", secret_namespace="web")

    assert len(config.solvers) == len(spec.acme.solvers)


def test_tsig_algorithms_in_any_case_reach_the_activities_as_cert_manager_names_them() -> None:
    spec = IssuerSpec.model_validate(zerossl_eab_dns01())

    config = issuer_config_from_spec(spec, name="Issuer web/zerossl", secret_namespace="web")

    assert config.solvers[0].dns01 is not None
    assert config.solvers[0].dns01.tsig_algorithm == "HMACSHA512"


def test_gateway_parent_refs_reach_the_http_route_with_group_kind_and_port() -> None:
    written = REALISTIC_SPECS["private-ca-gateway"]()
    spec = IssuerSpec.model_validate(written)

    config = issuer_config_from_spec(spec, name="Issuer web/internal", secret_namespace="web")

    # The way an Order workflow gets it: through Temporal's payload converter.
    converter = temporalio.converter.default().payload_converter
    [received] = converter.from_payloads(converter.to_payloads([config]), [IssuerConfig])
    http01 = received.solvers[0].http01
    assert http01 is not None
    # What activities/http01_routes.py puts in the HTTPRoute's parentRefs:
    route_refs = [ParentRef.model_validate(ref).to_api() for ref in http01.gateway_parent_refs]
    assert route_refs == written["acme"]["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"]


# --- The command, as a person runs it -----------------------------------------------------


def run_command(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acmeflow.cli", "convert-issuer"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_converts_what_it_can_and_says_what_it_cannot() -> None:
    akamai = with_refused(REFUSED_FIELDS["akamai"])
    documents = [
        cert_manager_issuer(akamai, name="zerossl"),
        cert_manager_issuer({"selfSigned": {}}, name="bootstrap"),
        cert_manager_issuer(REALISTIC_SPECS["letsencrypt-http01"](), kind="ClusterIssuer"),
    ]

    result = run_command(yaml.safe_dump_all(documents))

    assert result.returncode == 0, result.stderr
    written = list(yaml.safe_load_all(result.stdout))
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in written] == [
        (API_VERSION, "Issuer", "zerossl"),
        (API_VERSION, "ClusterIssuer", "letsencrypt"),
    ]
    assert [s for s in written[0]["spec"]["acme"]["solvers"]] == [
        zerossl_eab_dns01()["acme"]["solvers"][1]
    ]
    assert written[1]["spec"] == REALISTIC_SPECS["letsencrypt-http01"]()
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("Issuer web/zerossl: spec.acme.solvers[0]: solver left out")
    assert "dns01.akamai is not supported: " in lines[0]
    assert lines[1].startswith("Issuer web/bootstrap: spec.selfSigned: no spec.acme")
    assert lines[2].startswith("ClusterIssuer letsencrypt: spec.acme: note: ")


def test_the_command_fails_when_nothing_converts() -> None:
    result = run_command(yaml.safe_dump(cert_manager_issuer({"ca": {"secretName": "root"}})))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "nothing converted" in result.stderr.splitlines()[-1]


def test_the_command_says_when_its_input_is_not_yaml() -> None:
    result = run_command("spec: [unclosed\n")

    assert result.returncode != 0
    assert result.stdout == ""
    assert "not YAML" in result.stderr
