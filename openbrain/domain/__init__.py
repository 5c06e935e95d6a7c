"""Layer 1, the rules of the product, with no I/O: the profile schema, events, model specs, origin and
webhook-URL rules."""
