"""tiny-cuda-nn's ``Composite`` encoding: nested encodings over consecutive slices of the
input (``n_dims_to_encode`` each; one may leave it out and take the rest;
``dims_to_encode_begin`` starts a slice elsewhere), outputs concatenated. As in tcnn, a
nested output is padded so the next one starts at a multiple of that one's alignment
(a grid's n_features_per_level), and that padding is part of the output."""

from __future__ import annotations

import numpy as np
import torch

from ._config import NESTING_KEYS, check_keys, refuse_value
from .encoding_base import EncodingSpec


class CompositeSpec(EncodingSpec):
    def __init__(self, n_input_dims: int, config: dict, make_encoding):
        check_keys("Composite", config, {"nested", "reduction"})
        if str(config.get("reduction", "Concatenation")).lower() != "concatenation":
            refuse_value("Composite", "reduction", config["reduction"], "Concatenation")
        nested = config.get("nested")
        if not isinstance(nested, list):
            raise ValueError("tinycudann Composite: 'nested' must be a list of encoding configs")
        explicit = [c.get("n_dims_to_encode", 0) for c in nested if isinstance(c, dict)]
        free = None if any("dims_to_encode_begin" in c for c in nested) else n_input_dims - sum(explicit)
        if free is not None and free < 0:
            raise ValueError(
                f"tinycudann Composite: nested encodings encode {sum(explicit)} dims, "
                f"more than the {n_input_dims} given"
            )
        self.nested, self.begins, offset = [], [], 0
        for entry in nested:
            if not isinstance(entry, dict):
                raise TypeError(f"tinycudann Composite: nested entries must be dicts, got {type(entry).__name__}")
            if "n_dims_to_encode" in entry:
                offset = entry.get("dims_to_encode_begin", offset)
                dims = entry["n_dims_to_encode"]
            elif free is None:
                raise ValueError("tinycudann Composite: only one nested encoding may leave 'n_dims_to_encode' out")
            else:
                dims, free = free, None
            if dims > 0:
                inner = {k: v for k, v in entry.items() if k not in NESTING_KEYS}
                self.nested.append(make_encoding(dims, inner))
                self.begins.append(offset)
            offset += dims
        if offset > n_input_dims or any(b + e.n_input_dims > n_input_dims for b, e in zip(self.begins, self.nested)):
            raise ValueError(f"tinycudann Composite: nested encodings reach past the {n_input_dims} input dims")
        so_far = 0
        for current, following in zip(self.nested[:-1], self.nested[1:]):
            step = following.required_output_alignment
            current.set_padded_output_width(-(-(so_far + current.output_width) // step) * step - so_far)
            so_far += current.padded_output_width
        self.required_output_alignment = int(np.lcm.reduce([e.required_output_alignment for e in self.nested] + [1]))
        self.n_params = sum(e.n_params for e in self.nested)
        super().__init__(n_input_dims, 0)

    @property
    def padded_output_width(self) -> int:
        return sum(e.padded_output_width for e in self.nested)

    @property
    def output_width(self) -> int:
        return self.padded_output_width

    def set_padded_output_width(self, width: int) -> None:
        last = self.nested[-1]
        last.set_padded_output_width(width - (self.padded_output_width - last.padded_output_width))

    def forward(self, x, params):
        parts = params.split([e.n_params for e in self.nested]) if params is not None else [None] * len(self.nested)
        outs = []
        for begin, enc, part in zip(self.begins, self.nested, parts):
            outs.append(enc.forward(x[:, begin : begin + enc.n_input_dims], part))
        return torch.cat(outs, dim=1) if outs else x.new_zeros(x.shape[0], 0)

    def initialize(self, rng) -> np.ndarray:
        return np.concatenate([e.initialize(rng) for e in self.nested] + [np.zeros(0, np.float32)])

    def hyperparams(self) -> dict:
        return {"otype": "Composite", "nested": [e.hyperparams() for e in self.nested]}
