"""The S^3D-NeRF model: encoders, deformation field, decoder, renderer, super-resolution,
and the lip-sync expert network (trained by ``s3d_fast.training.syncnet``)."""

from .loading import GENERATOR_KIND, load_model
from .realtime import Baked
from .s3d import S3DNeRF
from .source import Source
from .syncnet import (
    SyncNet,
    SyncNetConfig,
    freeze,
    load_syncnet,
    lower_face,
    save_syncnet,
    sync_loss,
    sync_probability,
)

__all__ = [
    "GENERATOR_KIND",
    "Baked",
    "S3DNeRF",
    "Source",
    "SyncNet",
    "SyncNetConfig",
    "freeze",
    "load_model",
    "load_syncnet",
    "lower_face",
    "save_syncnet",
    "sync_loss",
    "sync_probability",
]
