"""Fixtures of the DNS-01 provider tests; each provider's servers come from its own module."""

from tests.dns01.powerdns_stack import *  # noqa: F403 - the stack's PowerDNS, asked directly
from tests.dns01.provider_fixtures import *  # noqa: F403 - the cross-provider tests' fixtures
from tests.dns01.route53_stack import *  # noqa: F403 - moto's zone and its BIND9 mirror
from tests.dns01.webhook_stack import *  # noqa: F403 - the stack's cert-manager webhook
