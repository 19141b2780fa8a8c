"""Use cases: what the service does, written against ports; handlers call them."""
