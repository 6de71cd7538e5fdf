"""``s3d-fast eval``: one-shot evaluation of a generator on held-out identities
(``cli`` is the command; ``evaluate`` runs the protocol)."""
