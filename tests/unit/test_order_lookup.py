"""After a lost heartbeat, ``create_order`` finds the order its earlier attempt created.

A fake CA serves an account's orders list the way Pebble does (oldest first, three per
page, a ``Link: rel="next"`` to the following page, invalid orders left out) and records
every new-order request, so each test can say whether a duplicate order was created.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from temporalio.testing import ActivityEnvironment

from acmeflow.activities.acme_client import Account
from acmeflow.activities.acme_order import AcmeOrderActivities
from acmeflow.activities.csr import build_csr, generate_private_key
from acmeflow.activities.secret_refs import SecretStore
from acmeflow.contracts.acme import AcmeOrderState, CreateOrderInput
from acmeflow.contracts.issuer import AccountRef
from acmeflow.contracts.names import RequestedNames
from acmeflow.contracts.secrets import SecretRef
from tests.unit.test_errors import http_response

CA = "https://ca.test"
ACCOUNT = AccountRef(
    server=f"{CA}/dir", account_key=SecretRef(path="/nonexistent"), account_uri=f"{CA}/acct/1"
)
OURS = ["www.example.com", "example.com"]
PER_PAGE = 3


def order_json(names: list[str], status: str = "pending", profile: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "identifiers": [{"type": "dns", "value": name} for name in names],
        "authorizations": [f"{CA}/authz/{name}" for name in names],
        "finalize": f"{CA}/finalize/{len(names)}",
    }
    if profile:
        body["profile"] = profile
    return body


def json_response(body: dict[str, Any], **headers: str) -> requests.Response:
    return http_response(
        200, json.dumps(body).encode(), content_type="application/json", headers=headers
    )


class FakeCa:
    """One account's orders, listed oldest first in pages; new orders are recorded."""

    def __init__(self, orders: list[dict[str, Any]]) -> None:
        self.orders = {f"{CA}/order/{i}": order for i, order in enumerate(orders)}
        self.created: list[str] = []
        self.reads: list[str] = []
        self.on_page: Callable[[int], None] = lambda page: None

    def listed(self) -> list[str]:
        return [url for url, order in self.orders.items() if order["status"] != "invalid"]

    def _post_as_get(self, url: str) -> requests.Response:
        self.reads.append(url)
        if url == ACCOUNT.account_uri:
            return json_response({"status": "valid", "orders": f"{CA}/orders/1"})
        if url.startswith(f"{CA}/orders/1"):
            page = int(url.rpartition("/page/")[2]) if "/page/" in url else 1
            self.on_page(page)
            listed = self.listed()
            entries = listed[(page - 1) * PER_PAGE : page * PER_PAGE]
            more = len(listed) > page * PER_PAGE
            link = {"Link": f'<{CA}/orders/1/page/{page + 1}>;rel="next"'} if more else {}
            return json_response({"orders": entries}, **link)
        return json_response(self.orders[url])

    def _post(self, url: str, body: object) -> requests.Response:
        new = f"{CA}/order/new-{len(self.created)}"
        self.created.append(new)
        return json_response(order_json(OURS), Location=new)

    @property
    def directory(self) -> dict[str, str]:
        return {"newOrder": f"{CA}/new-order"}


class OneAccount:
    """Stands in for ``AcmeClients``: every reference is the fake CA's one account."""

    def __init__(self, ca: FakeCa) -> None:
        self._account = Account(client=ca, uri=ACCOUNT.account_uri, thumbprint="unused")  # type: ignore[arg-type]

    def account(self, ref: AccountRef) -> Account:
        return self._account


def create_after_lost_heartbeat(ca: FakeCa, names: list[str], profile: str = "") -> str:
    """Attempt 2 of ``create_order`` with no heartbeat details: the order URL it returns."""
    steps = AcmeOrderActivities(OneAccount(ca), SecretStore())  # type: ignore[arg-type]
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=2)
    csr = build_csr(generate_private_key("ECDSA"), RequestedNames(dns_names=names))
    request = CreateOrderInput(account=ACCOUNT, csr_pem=csr, profile=profile)
    state: AcmeOrderState = environment.run(steps.create_order, request)
    return state.url


def others(count: int) -> list[dict[str, Any]]:
    return [order_json([f"host{i}.example.com"]) for i in range(count)]


def test_its_order_is_found_behind_more_than_twenty_newer_orders_on_many_pages() -> None:
    ca = FakeCa([*others(2), order_json(OURS), *others(40)])
    assert len(ca.listed()) // PER_PAGE > 10
    assert create_after_lost_heartbeat(ca, OURS) == f"{CA}/order/2"
    assert ca.created == []


def test_the_newest_of_two_open_orders_for_the_same_names_is_taken() -> None:
    ca = FakeCa([order_json(OURS), *others(25), order_json(OURS), *others(4)])
    assert create_after_lost_heartbeat(ca, OURS) == f"{CA}/order/26"
    assert ca.created == []


@pytest.mark.parametrize(
    "lookalike",
    [
        order_json(OURS, status="valid"),
        order_json(OURS, status="processing"),
        order_json(OURS, status="invalid"),
        order_json(OURS[:1]),
        order_json([*OURS, "api.example.com"]),
        order_json(OURS, profile="shortlived"),
    ],
    ids=["finalized", "finalizing", "invalid", "fewer-names", "more-names", "other-profile"],
)
def test_an_order_that_cannot_be_ours_is_never_taken(lookalike: dict[str, Any]) -> None:
    ca = FakeCa([*others(10), lookalike, *others(15)])
    assert create_after_lost_heartbeat(ca, OURS, profile="classic") == f"{CA}/order/new-0"
    assert ca.created == [f"{CA}/order/new-0"]


def test_an_order_shifted_onto_a_page_already_read_is_found_on_the_next_walk() -> None:
    # Ours is first on page 3. Just before page 3 is read, an order on page 1 turns invalid
    # and drops out of the list, so ours moves to page 2, which the walk has left behind.
    ca = FakeCa([*others(6), order_json(OURS), *others(30)])

    def first_order_turns_invalid(page: int) -> None:
        if page == 3 and ca.orders[f"{CA}/order/0"]["status"] != "invalid":
            ca.orders[f"{CA}/order/0"]["status"] = "invalid"

    ca.on_page = first_order_turns_invalid
    assert create_after_lost_heartbeat(ca, OURS) == f"{CA}/order/6"
    assert ca.created == []


def test_each_order_is_read_once_however_often_the_list_is_walked() -> None:
    ca = FakeCa(others(30))
    assert create_after_lost_heartbeat(ca, OURS) == f"{CA}/order/new-0"
    order_reads = [url for url in ca.reads if url.startswith(f"{CA}/order/")]
    assert sorted(order_reads) == sorted(set(order_reads))
    assert len(order_reads) == 30


def test_a_next_link_back_to_a_page_already_read_ends_the_walk() -> None:
    ca = FakeCa(others(5))
    listing = ca._post_as_get

    def looping(url: str) -> requests.Response:
        response = listing(url)
        if url.endswith("/page/2"):
            response.headers["Link"] = f'<{CA}/orders/1>;rel="next"'
        return response

    ca._post_as_get = looping  # type: ignore[method-assign]
    assert create_after_lost_heartbeat(ca, OURS) == f"{CA}/order/new-0"
