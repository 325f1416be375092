"""End-to-end tests of the Certificate lifecycle on the real stack (issue 15)."""
