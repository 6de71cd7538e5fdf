"""The torch module all three public classes share, as tiny-cuda-nn's ``Module``: one
flat float32 ``params`` parameter initialised from ``seed``, inputs (batch, n_input_dims)
cast to float, outputs (batch, n_output_dims).

Precision: computed in float32 (float64 after ``.double()``); the output is float16 on
CUDA as tcnn gives it, float32 on a CPU (where half arithmetic is slow and imprecise),
or the ``dtype`` an Encoding was given. A ``.cuda()`` / ``.to("cuda")`` without a GPU
raises one clear error instead of torch's."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ._pcg32 import Pcg32

_NO_GPU = (
    "s3d_fast.compat.tinycudann: {name}.{call} asks for a GPU, but torch sees no CUDA device here. "
    "These modules run on the CPU as they are: drop the {call} call, or choose the device with "
    "device = 'cuda' if torch.cuda.is_available() else 'cpu'."
)


class Module(torch.nn.Module):
    def __init__(self, seed: int = 1337):
        super().__init__()
        self.seed = seed
        rng = Pcg32(int(seed))
        self.params = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(self._initial_params(rng))))
        self.loss_scale = 1.0  # tcnn scales half-precision gradients; float32 needs none

    # subclasses: _initial_params(rng) -> np.float32 array; _compute(x2d, params) -> (N, width)
    _explicit_dtype = None

    @property
    def dtype(self) -> torch.dtype:
        """Precision of the output on the parameters' device (tcnn's ``dtype``)."""
        if self._explicit_dtype is not None:
            return self._explicit_dtype
        return torch.float16 if self.params.is_cuda else torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: x must be a tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.n_input_dims:
            raise ValueError(f"{type(self).__name__}: x must be (batch, {self.n_input_dims}), got {tuple(x.shape)}")
        params = self.params
        if x.device != params.device:
            warnings.warn(
                f"input is on {x.device} but the module on {params.device}; moving it (as tiny-cuda-nn does)",
                stacklevel=2,
            )
            x = x.to(params.device)
        work = torch.float64 if params.dtype == torch.float64 else torch.float32
        lead = x.shape[:-1]
        out = self._compute(x.reshape(-1, self.n_input_dims).to(work), params.to(work))
        out = out[:, : self.n_output_dims]
        if work != torch.float64:
            out = out.to(self.dtype)
        return out.reshape(*lead, self.n_output_dims)

    def _refuse_without_gpu(self, device, call: str) -> None:
        if device is not None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(_NO_GPU.format(name=type(self).__name__, call=call))

    def cuda(self, device=None):
        self._refuse_without_gpu("cuda", ".cuda()")
        return super().cuda(device)

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        self._refuse_without_gpu(device, f".to({str(device)!r})")
        return super().to(*args, **kwargs)

    @property
    def jit_fusion(self) -> bool:
        return False  # no runtime-compiled fusion here; the setter accepts and ignores

    @jit_fusion.setter
    def jit_fusion(self, value) -> None:
        pass

    def hyperparams(self) -> dict:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"n_input_dims={self.n_input_dims}, n_output_dims={self.n_output_dims}, seed={self.seed}, "
            f"dtype={self.dtype}, hyperparams={self.hyperparams()}"
        )
