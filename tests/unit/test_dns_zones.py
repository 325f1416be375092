"""Finding the zone by SOA, following CNAMEs and reaching nameservers, without a server.

The stand-in answers the way a recursive resolver does (a CNAME is chased, so an SOA
query of an alias also carries the target zone's SOA); the real BIND is in
tests/dns01/test_zones.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest
from temporalio.exceptions import ApplicationError

from acmeflow.activities.dns_zones import (
    MAX_CNAME_HOPS,
    cname_chain,
    nameserver_addresses,
    zone_of,
)
from acmeflow.cli import build_parser
from acmeflow.contracts.errors import BAD_REQUEST
from acmeflow.devstack.components import component_processes
from acmeflow.worker.command import add_parser
from acmeflow.worker.config import load_config


class Resolver:
    """Records by owner name; answers like a recursive resolver, chasing CNAMEs."""

    def __init__(self, records: dict[str, list[tuple[str, str]]]) -> None:
        self.records = records
        self.asked: list[str] = []

    def _owned(self, name: str, rdtype: str) -> list[dns.rrset.RRset]:
        texts = [text for kind, text in self.records.get(name, []) if kind == rdtype]
        return [dns.rrset.from_text(name, 60, "IN", rdtype, *texts)] if texts else []

    def __call__(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        kind = dns.rdatatype.to_text(rdtype)
        self.asked.append(f"{kind} {name}")
        response = dns.message.make_response(dns.message.make_query(name, rdtype))
        owner = name
        for _ in range(20):
            response.answer += self._owned(owner, kind)
            aliases = self._owned(owner, "CNAME") if kind != "CNAME" else []
            if not aliases:
                break
            response.answer += aliases
            owner = aliases[0][0].to_text()
        return response


def soa(zone: str) -> tuple[str, str]:
    return "SOA", f"ns.{zone} hostmaster.{zone} 1 60 60 3600 5"


ZONES = Resolver(
    {
        "example.net.": [soa("example.net.")],
        "deep.example.net.": [soa("deep.example.net.")],
        "delegated.test.": [soa("delegated.test.")],
        "_acme-challenge.alias.example.net.": [("CNAME", "_acme-challenge.alias.delegated.test.")],
    }
)


@pytest.mark.parametrize(
    ("fqdn", "zone"),
    [
        ("_acme-challenge.example.net.", "example.net."),
        ("_acme-challenge.www.example.net.", "example.net."),
        ("_acme-challenge.a.b.c.example.net.", "example.net."),
        # A zone cut below the name's parent's parent: the closest SOA wins.
        ("_acme-challenge.www.deep.example.net.", "deep.example.net."),
        ("_acme-challenge.x.y.deep.example.net.", "deep.example.net."),
    ],
)
def test_the_zone_is_the_closest_name_that_owns_an_soa(fqdn: str, zone: str) -> None:
    assert zone_of(fqdn, ZONES, where="the resolver") == zone


def test_the_walk_stops_at_the_first_soa() -> None:
    resolver = Resolver(dict(ZONES.records))
    zone_of("_acme-challenge.www.example.net.", resolver, where="the resolver")
    assert resolver.asked == [
        "SOA _acme-challenge.www.example.net.",
        "SOA www.example.net.",
        "SOA example.net.",
    ]


def test_an_alias_is_not_a_zone_though_its_answer_carries_the_targets_soa() -> None:
    resolver = Resolver(ZONES.records | {"alias.example.net.": [("CNAME", "delegated.test.")]})
    assert zone_of("alias.example.net.", resolver, where="the resolver") == "example.net."


def test_a_name_in_no_zone_is_refused_with_a_reason() -> None:
    with pytest.raises(ApplicationError) as caught:
        zone_of("_acme-challenge.www.nowhere.invalid.", ZONES, where="127.0.0.1:53")
    assert caught.value.type == BAD_REQUEST
    assert caught.value.message == (
        "no zone found for _acme-challenge.www.nowhere.invalid. at 127.0.0.1:53: no enclosing SOA"
    )


def test_a_name_without_cname_is_its_own_target() -> None:
    fqdn = "_acme-challenge.www.example.net."
    assert cname_chain(fqdn, ZONES) == [fqdn]


def test_a_cname_chain_ends_where_the_value_goes() -> None:
    resolver = Resolver(
        ZONES.records
        | {
            "_acme-challenge.alias.delegated.test.": [("CNAME", "acme.elsewhere.test.")],
        }
    )
    assert cname_chain("_acme-challenge.alias.example.net.", resolver) == [
        "_acme-challenge.alias.example.net.",
        "_acme-challenge.alias.delegated.test.",
        "acme.elsewhere.test.",
    ]


def test_a_cname_loop_is_refused_with_the_loop_in_the_reason() -> None:
    resolver = Resolver(
        {
            "_acme-challenge.a.test.": [("CNAME", "_acme-challenge.b.test.")],
            "_acme-challenge.b.test.": [("CNAME", "_acme-challenge.a.test.")],
        }
    )
    with pytest.raises(ApplicationError) as caught:
        cname_chain("_acme-challenge.a.test.", resolver)
    assert caught.value.type == BAD_REQUEST
    assert caught.value.message == (
        "CNAME loop: _acme-challenge.a.test. -> _acme-challenge.b.test. -> _acme-challenge.a.test."
    )


def test_an_over_long_cname_chain_is_refused() -> None:
    hops = MAX_CNAME_HOPS + 2
    resolver = Resolver({f"h{i}.test.": [("CNAME", f"h{i + 1}.test.")] for i in range(hops)})
    assert len(cname_chain("h2.test.", resolver)) == MAX_CNAME_HOPS + 1
    with pytest.raises(ApplicationError) as caught:
        cname_chain("h0.test.", resolver)
    assert caught.value.type == BAD_REQUEST
    assert caught.value.message.startswith(
        f"CNAME chain longer than {MAX_CNAME_HOPS} hops: h0.test."
    )


def test_a_nameserver_override_wins_over_its_addresses() -> None:
    resolver = Resolver({"ns.example.net.": [("A", "192.0.2.1")]})
    overrides = {"ns.example.net.": "127.0.0.1:5301"}
    assert nameserver_addresses("NS.Example.Net.", [resolver], port=53, overrides=overrides) == [
        ("127.0.0.1", 5301)
    ]
    assert resolver.asked == []


def test_a_nameserver_is_reached_at_its_a_records_else_its_aaaa_records() -> None:
    first = Resolver({})
    second = Resolver(
        {
            "ns1.example.net.": [("A", "192.0.2.1"), ("A", "192.0.2.2")],
            "ns6.example.net.": [("AAAA", "2001:db8::6")],
        }
    )
    found = nameserver_addresses("ns1.example.net.", [first, second], port=5300, overrides={})
    assert found == [("192.0.2.1", 5300), ("192.0.2.2", 5300)]
    found = nameserver_addresses("ns6.example.net.", [first, second], port=53, overrides={})
    assert found == [("2001:db8::6", 53)]


def parsed(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["worker", *flags])


def test_the_nameserver_flag_repeats_and_names_compare_as_nameservers_give_them() -> None:
    args = parsed(
        *("--self-check-nameserver", "NS.example.net=127.0.0.1:5301"),
        *("--self-check-nameserver", "ns2.example.org.=127.0.0.1:5302"),
    )
    assert load_config(args, env={}).self_check_nameservers == {
        "ns.example.net.": "127.0.0.1:5301",
        "ns2.example.org.": "127.0.0.1:5302",
    }


def test_the_nameserver_map_from_the_environment_and_from_a_file(tmp_path: Path) -> None:
    env = {"ACMEFLOW_SELF_CHECK_NAMESERVERS": "a.test=127.0.0.1:1, b.test.=127.0.0.1:2"}
    assert load_config(None, env=env).self_check_nameservers == {
        "a.test.": "127.0.0.1:1",
        "b.test.": "127.0.0.1:2",
    }
    path = tmp_path / "worker.yaml"
    path.write_text("self_check_nameservers:\n  ns.example.net: 127.0.0.1:5301\n")
    args = parsed("--config", str(path))
    assert load_config(args, env={}).self_check_nameservers == {"ns.example.net.": "127.0.0.1:5301"}


def test_a_nameserver_flag_without_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="expected NAME=HOST:PORT"):
        load_config(parsed("--self-check-nameserver", "ns.example.net."), env={})


def test_the_dev_stacks_worker_reaches_powerdns_nameserver_at_its_port(tmp_path: Path) -> None:
    info = SimpleNamespace(
        temporal_address="127.0.0.1:7233",
        kubeconfig=tmp_path / "kubeconfig",
        kubectl=tmp_path / "kubectl",
        dns_address="127.0.0.1:5300",
        http01_port=5002,
        moto_url="http://127.0.0.1:5000",
    )
    worker, *_ = component_processes(tmp_path, info, 5300, powerdns_port=5301)
    args = build_parser().parse_args(worker.argv[3:])
    config = load_config(args, env={})
    assert config.self_check_nameservers == {"ns.example.net.": "127.0.0.1:5301"}
    assert config.self_check_dns_port == 5300
