"""The acmeflow.io/v1alpha1 API: the CRDs as pydantic models, and their generated YAML."""
