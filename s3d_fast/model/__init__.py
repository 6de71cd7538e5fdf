"""The S^3D-NeRF model: encoders, deformation field, decoder, renderer, super-resolution."""
from .config import Config, LossConfig, ModelConfig, TrainConfig, get_config  # noqa: F401
from .s3d import Baked, S3DNeRF, Source  # noqa: F401
from .io import load_model  # noqa: F401,E402
