"""Data: audio features, video I/O, the data-set format and SynthTalk.

Submodules are imported on use (``from s3d_fast.data import audio``) so that the
command line stays fast and optional media libraries load only when needed.
"""
