"""Search attributes every order workflow keeps current, so operators can query them.

Registered by the dev stack at server start and by ``acmeflow worker`` on a real
cluster; the names are part of the operator interface documented in the runbook.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ORDER_STATE = SearchAttributeKey.for_keyword("AcmeflowOrderState")
ORDER_NAMESPACE = SearchAttributeKey.for_keyword("AcmeflowNamespace")
ORDER_NAME = SearchAttributeKey.for_keyword("AcmeflowOrderName")
CERTIFICATE_NAME = SearchAttributeKey.for_keyword("AcmeflowCertificate")
ISSUER_NAME = SearchAttributeKey.for_keyword("AcmeflowIssuer")
DOMAINS = SearchAttributeKey.for_keyword_list("AcmeflowDomains")
ACME_ORDER_URL = SearchAttributeKey.for_keyword("AcmeflowOrderURL")

ALL_KEYS = (
    ORDER_STATE,
    ORDER_NAMESPACE,
    ORDER_NAME,
    CERTIFICATE_NAME,
    ISSUER_NAME,
    DOMAINS,
    ACME_ORDER_URL,
)

# The type names the ``temporal`` CLI takes for ``--search-attribute NAME=TYPE``.
SEARCH_ATTRIBUTE_TYPES = {
    key.name: "KeywordList" if key is DOMAINS else "Keyword" for key in ALL_KEYS
}
