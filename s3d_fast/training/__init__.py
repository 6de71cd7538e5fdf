"""``s3d-fast train``: the lip-sync expert's stage, then the generator's (``cli`` is the
command; ``trainer`` runs the stages)."""
