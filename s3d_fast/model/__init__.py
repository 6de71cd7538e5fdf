"""The S^3D-NeRF model: encoders, deformation field, decoder, renderer, super-resolution."""
from .config import Config, LossConfig, ModelConfig, TrainConfig, get_config  # noqa: F401
from .s3d import Baked, S3DNeRF, Source  # noqa: F401
from .io import load_model  # noqa: F401,E402

# Lip-sync expert (stage 1) -- s3d_fast/model/syncnet.py, sync_training.py
from .syncnet import (  # noqa: F401,E402
    SyncNet, SyncNetConfig, freeze, load_syncnet, lower_face, save_syncnet, sync_loss, sync_probability,
)
# Stage-1 training: s3d_fast.model.sync_training.train_syncnet (not imported here, so that
# `python -m s3d_fast.model.sync_training` runs it as a fresh module).
