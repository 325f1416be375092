"""Activity type names: what workflows schedule and workers register.

Workflows call activities by these names, so they never import the code that runs them.
The names are recorded in every history; renaming one breaks replay of running workflows.
"""

from __future__ import annotations

from enum import StrEnum


class ActivityName(StrEnum):
    # ACME protocol steps (activities/acme_order.py)
    CHECK_REQUEST = "check_request"
    ENSURE_ACCOUNT = "ensure_account"
    REGISTER_ACCOUNT = "register_account"
    """ensure_account that also says which key it used (activities/acme_account.py)."""
    CREATE_ORDER = "create_order"
    DESCRIBE_AUTHORIZATION = "describe_authorization"
    ACCEPT_CHALLENGE = "accept_challenge"
    AWAIT_AUTHORIZATION = "await_authorization"
    FINALIZE_ORDER = "finalize_order"
    AWAIT_ORDER = "await_order"
    DOWNLOAD_CERTIFICATE = "download_certificate"
    DEACTIVATE_AUTHORIZATION = "deactivate_authorization"
    # Solvers
    PRESENT_HTTP01 = "present_http01"
    SELF_CHECK_HTTP01 = "self_check_http01"
    CLEAN_UP_HTTP01 = "clean_up_http01"
    PRESENT_DNS01 = "present_dns01"
    SELF_CHECK_DNS01 = "self_check_dns01"
    CLEAN_UP_DNS01 = "clean_up_dns01"
    # The Certificate's Kubernetes side
    INSPECT_CERTIFICATE_SECRET = "inspect_certificate_secret"
    PREPARE_PRIVATE_KEY = "prepare_private_key"
    CREATE_ORDER_RESOURCE = "create_order_resource"
    STORE_CERTIFICATE = "store_certificate"
    REFRESH_TLS_SECRET = "refresh_tls_secret"
    FETCH_RENEWAL_INFO = "fetch_renewal_info"
    """The CA's suggested renewal window (ARI, activities/renewal_info.py)."""
    PRUNE_ORDERS = "prune_orders"
    """Delete a Certificate's Orders beyond revisionHistoryLimit (activities/order_history.py)."""
    # Observers (the bridge's task queue)
    PUBLISH_ORDER_PROGRESS = "publish_order_progress"
    PUBLISH_CERTIFICATE_PROGRESS = "publish_certificate_progress"
    PUBLISH_ISSUER_STATUS = "publish_issuer_status"
