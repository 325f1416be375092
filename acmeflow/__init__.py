"""acmeflow: a Kubernetes ACME issuer in which every ACME Order is a durable Temporal workflow."""

__version__ = "0.1.0"
