"""Register acmeflow's search attributes before the first workflow upserts them.

The dev server registers them at start (``--search-attribute``); a self-hosted cluster
takes them from the worker at start-up. Temporal Cloud refuses this call from a worker:
there, add them once with ``tcld namespace search-attributes add`` (README).
"""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from acmeflow.workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

log = logging.getLogger(__name__)
_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


async def ensure_search_attributes(client: Client) -> list[str]:
    """Add the missing ones; return their names. Logs, never raises, when not allowed."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {
            name: _INDEXED[kind]
            for name, kind in SEARCH_ATTRIBUTE_TYPES.items()
            if name not in existing.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(sorted(missing)))
        return sorted(missing)
    except RPCError as error:
        log.warning(
            "cannot register search attributes (%s); register them by hand: %s",
            error.message,
            ", ".join(f"{n}={k}" for n, k in SEARCH_ATTRIBUTE_TYPES.items()),
        )
        return []
