"""Plumbing the worker, the bridge and the CLI share: settings, Temporal and Kubernetes clients."""
