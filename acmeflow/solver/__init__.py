"""``acmeflow solver``: the HTTP-01 responder any replica of which can answer any token."""
