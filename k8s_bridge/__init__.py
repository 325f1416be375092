"""The Kubernetes bridge: resource changes to workflows, workflow progress to status."""
