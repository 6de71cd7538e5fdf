"""tiny-cuda-nn drop-in: ``tcnn.NetworkWithInputEncoding`` (hash grid + FullyFusedMLP, as
Instant-NGP's density network) forward + backward, beside the same model in pure PyTorch
(the torch hash-grid reference and bias-free ``nn.Linear`` layers, as nerfstudio's torch
fallback builds it), in one run on 2 threads.

    PYTHONPATH=. python -m pytest benchmarks/bench_compat_tinycudann.py -q -s

The summary at the end (benchmarks/conftest.py) gives points/s and the ratio fused / torch.
"""

import pytest
import torch
from conftest import min_seconds

import s3d_fast.compat.tinycudann as tcnn
from s3d_fast.ops import HashGridConfig
from s3d_fast.ops import reference as ref

N = 1 << 16
GROUP = "tcnn NetworkWithInputEncoding forward+backward"
ENCODING = {
    "otype": "HashGrid",
    "n_levels": 16,
    "n_features_per_level": 2,
    "log2_hashmap_size": 19,
    "base_resolution": 16,
    "per_level_scale": 1.4472692012786865,  # Instant-NGP's: finest level 2048
}
NETWORK = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64}
NETWORK["n_hidden_layers"] = 1
N_OUT = 16


@pytest.fixture(scope="module")
def model():
    return tcnn.NetworkWithInputEncoding(3, N_OUT, ENCODING, NETWORK)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(N, 3, generator=g), torch.randn(N, N_OUT, generator=g)


class TorchModel(torch.nn.Module):
    """The same network in pure PyTorch, on the same parameters."""

    def __init__(self, compat):
        super().__init__()
        n_mlp = compat.mlp.n_params
        weights = compat.mlp.weights(compat.params.detach()[:n_mlp])
        self.config = HashGridConfig.from_tcnn(ENCODING)
        self.table = torch.nn.Parameter(compat.params.detach()[n_mlp:].clone())
        layers = []
        for w in weights:
            layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
            layer.weight.data.copy_(w)
            layers += [layer, torch.nn.ReLU()]
        self.mlp = torch.nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.mlp(ref.hashgrid_encode(x, self.table, self.config))[:, :N_OUT]


def _run(benchmark, record, impl, module, data, rounds):
    x, grad = data

    def step():
        module.zero_grad(set_to_none=True)
        module(x).backward(grad)

    step()  # extension build, first touch of buffers
    benchmark.pedantic(step, rounds=rounds, iterations=1)
    seconds = min_seconds(benchmark)
    if seconds is not None:
        record(GROUP, impl, N / seconds / 1e6, "M pts/s")


@pytest.mark.benchmark(group="tcnn-compat")
def test_fused_network_with_input_encoding(benchmark, record, model, data):
    _run(benchmark, record, "fused", model, data, rounds=10)


@pytest.mark.benchmark(group="tcnn-compat")
def test_torch_network_with_input_encoding(benchmark, record, model, data):
    torch_model = TorchModel(model)
    x = data[0][:1024]
    torch.testing.assert_close(torch_model(x), model(x), rtol=1e-4, atol=1e-6)  # the same function
    _run(benchmark, record, "torch", torch_model, data, rounds=3)
