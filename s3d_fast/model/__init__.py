"""The S^3D-NeRF model."""

# Lip-sync expert (stage 1) -- s3d_fast/model/syncnet.py, sync_training.py
from .syncnet import (  # noqa: F401,E402
    SyncNet, SyncNetConfig, freeze, load_syncnet, lower_face, save_syncnet, sync_loss, sync_probability,
)
# Stage-1 training: s3d_fast.model.sync_training.train_syncnet (not imported here, so that
# `python -m s3d_fast.model.sync_training` runs it as a fresh module).
