"""cert-manager's own DNS provider blocks as dns-lexicon providers, and back again.

cert-manager has a client of its own for Cloudflare, Cloud DNS, Azure DNS and DigitalOcean;
acmeflow reaches the same APIs through dns-lexicon, so a pasted cert-manager block becomes a
``Lexicon`` contract. Each field maps onto one lexicon option: a Secret key reference becomes
a ``secret_options`` entry (the worker reads it when it presents), a clear value an
``options`` entry. Clear fields lexicon has no option for (cloudDNS ``project``) are kept in
``shown_fields`` only, so the Challenge can show the block as the Issuer wrote it: every
mapping reads back.

Akamai is not here: dns-lexicon has no Akamai provider, so admission refuses the block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acmeflow.contracts.issuer import Lexicon
from acmeflow.contracts.secrets import SecretRef
from acmeflow.crds.models import Dns01Solver, LexiconProvider, LexiconSecretRef

LEXICON_BLOCK = "lexicon"
"""acmeflow's own block, which names the lexicon provider and its options directly."""


@dataclass(frozen=True)
class OptionField:
    """One field of a cert-manager block and the lexicon option it becomes."""

    field: str
    """Wire name in cert-manager's block (``apiTokenSecretRef``)."""
    option: str
    """lexicon's option name (``auth_token``)."""
    secret: bool = False
    """A Secret key reference (``{name, key}``), not a clear value."""


@dataclass(frozen=True)
class LexiconMapping:
    """How one cert-manager block (or one way of writing it) becomes a lexicon provider."""

    block: str
    """Wire name of the block under ``dns01`` (``cloudflare``)."""
    provider: str
    """dns-lexicon's provider name."""
    when: str
    """The field that selects this way of writing the block (cloudflare: token or key)."""
    fields: tuple[OptionField, ...]
    zone_field: str = ""
    """The field naming the DNS zone (lexicon's domain), when the block has one."""
    shown: tuple[str, ...] = ()
    """Clear fields lexicon takes no option for: kept for the Challenge, never passed on."""

    def options_of(self, lexicon: Lexicon) -> bool:
        """Whether ``lexicon`` holds every option this way of writing the block produces."""
        return all(
            (f.option in lexicon.secret_options) if f.secret else (f.option in lexicon.options)
            for f in self.fields
        )


MAPPINGS: tuple[LexiconMapping, ...] = (
    LexiconMapping(
        "cloudflare",
        "cloudflare",
        when="apiKeySecretRef",
        fields=(
            OptionField("email", "auth_username"),
            OptionField("apiKeySecretRef", "auth_token", secret=True),
        ),
    ),
    # lexicon takes a token when auth_username is unset; an email beside a token means
    # nothing to cert-manager either, so it is only shown.
    LexiconMapping(
        "cloudflare",
        "cloudflare",
        when="apiTokenSecretRef",
        fields=(OptionField("apiTokenSecretRef", "auth_token", secret=True),),
        shown=("email",),
    ),
    # lexicon reads the project from the service account's key, and finds the managed zone
    # by its DNS name among public zones: project and hostedZoneName are only shown.
    LexiconMapping(
        "cloudDNS",
        "googleclouddns",
        when="serviceAccountSecretRef",
        fields=(OptionField("serviceAccountSecretRef", "auth_service_account_info", secret=True),),
        shown=("project", "hostedZoneName"),
    ),
    LexiconMapping(
        "azureDNS",
        "azure",
        when="clientSecretSecretRef",
        fields=(
            OptionField("clientID", "auth_client_id"),
            OptionField("clientSecretSecretRef", "auth_client_secret", secret=True),
            OptionField("tenantID", "auth_tenant_id"),
            OptionField("subscriptionID", "auth_subscription_id"),
            OptionField("resourceGroupName", "resource_group"),
        ),
        zone_field="hostedZoneName",
        shown=("environment", "zoneType"),
    ),
    LexiconMapping(
        "digitalocean",
        "digitalocean",
        when="tokenSecretRef",
        fields=(OptionField("tokenSecretRef", "auth_token", secret=True),),
    ),
)
"""Every cert-manager block acmeflow publishes through lexicon, and how."""

MAPPED_BLOCKS = tuple(dict.fromkeys(mapping.block for mapping in MAPPINGS))


class UnmappableBlock(ValueError):
    """A mapped block without exactly one way of writing it (cloudflare: a token or a key)."""


def lexicon_contract(dns01: Dns01Solver, *, secret_namespace: str) -> Lexicon:
    """The ``Lexicon`` for acmeflow's lexicon block, or for the mapped cert-manager block.

    Raises ``UnmappableBlock`` when ``dns01`` holds neither, or a block that names no
    credentials (or two kinds) for its provider.
    """
    if dns01.lexicon is not None:
        return _from_lexicon_block(dns01.lexicon, secret_namespace)
    written = dns01.to_api()
    for name in MAPPED_BLOCKS:
        block = written.get(name)
        if block is None:
            continue
        ways = [m for m in MAPPINGS if m.block == name]
        chosen = [m for m in ways if block.get(m.when) is not None]
        if len(chosen) != 1:
            raise UnmappableBlock(f"set exactly one of {' or '.join(m.when for m in ways)}")
        return _mapped(chosen[0], block, secret_namespace)
    raise UnmappableBlock(f"no provider acmeflow publishes through lexicon: {sorted(written)}")


def _from_lexicon_block(block: LexiconProvider, secret_namespace: str) -> Lexicon:
    secret = block.credentials_secret_ref
    return Lexicon(
        provider=block.provider,
        zone=block.zone or "",
        options=dict(block.options),
        options_secret=(
            SecretRef(namespace=secret_namespace, name=secret.name) if secret is not None else None
        ),
        shown_as=LEXICON_BLOCK,
    )


def _mapped(mapping: LexiconMapping, block: Mapping[str, Any], secret_namespace: str) -> Lexicon:
    options: dict[str, str] = {}
    secret_options: dict[str, SecretRef] = {}
    for field in mapping.fields:
        value = block.get(field.field)
        if value is None:
            continue
        if field.secret:
            secret_options[field.option] = SecretRef(
                namespace=secret_namespace, name=value["name"], key=value["key"]
            )
        else:
            options[field.option] = str(value)
    return Lexicon(
        provider=mapping.provider,
        zone=str(block.get(mapping.zone_field) or "") if mapping.zone_field else "",
        options=options,
        secret_options=secret_options,
        shown_as=mapping.block,
        shown_fields={name: str(block[name]) for name in mapping.shown if block.get(name)},
    )


def dns01_block(lexicon: Lexicon) -> dict[str, Any]:
    """The ``dns01`` provider block (wire form) that ``lexicon`` was read from."""
    for mapping in MAPPINGS:
        if mapping.block == lexicon.shown_as and mapping.options_of(lexicon):
            return {mapping.block: _block_of(mapping, lexicon)}
    secret = lexicon.options_secret
    block = LexiconProvider(
        provider=lexicon.provider,
        zone=lexicon.zone or None,
        credentials_secret_ref=LexiconSecretRef(name=secret.name) if secret is not None else None,
        options=dict(lexicon.options),
    )
    return {LEXICON_BLOCK: block.to_api()}


def _block_of(mapping: LexiconMapping, lexicon: Lexicon) -> dict[str, Any]:
    block: dict[str, Any] = dict(lexicon.shown_fields)
    for field in mapping.fields:
        if field.secret:
            ref = lexicon.secret_options[field.option]
            block[field.field] = {"name": ref.name, "key": ref.key}
        else:
            block[field.field] = lexicon.options[field.option]
    if mapping.zone_field and lexicon.zone:
        block[mapping.zone_field] = lexicon.zone
    return block
