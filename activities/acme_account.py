"""``register_account``: the issuer's account, and which key it was registered with.

The issuer's workflow keeps the key's public thumbprint between looks, so a key a user
replaced in its Secret is noticed (and said) at the next look: ``ensure_account`` then
finds no account for the new key and registers one, as cert-manager does. RFC 8555's
key-change needs the old key to sign the roll-over, and a replaced Secret no longer holds
it, so acmeflow registers a new account instead (docs/issuers.md).
"""

from __future__ import annotations

from temporalio import activity

from acmeflow.activities.acme_client import AcmeClients, key_thumbprint
from acmeflow.activities.acme_order import AcmeOrderActivities
from acmeflow.contracts.activities import ActivityName
from acmeflow.contracts.issuer import IssuerConfig, RegisteredAccount


class AcmeAccountActivities:
    """Account registration for issuers' workflows; Orders keep ``ensure_account``."""

    def __init__(self, clients: AcmeClients, orders: AcmeOrderActivities) -> None:
        self._clients = clients
        self._orders = orders

    @activity.defn(name=ActivityName.REGISTER_ACCOUNT)
    def register_account(self, issuer: IssuerConfig) -> RegisteredAccount:
        """Find or register the account of the key now in the Secret (idempotent)."""
        uri = self._orders.ensure_account(issuer)
        key, _ = self._clients.account_key(issuer)
        return RegisteredAccount(uri=uri, thumbprint=key_thumbprint(key))
