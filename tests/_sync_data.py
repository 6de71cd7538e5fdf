"""Tiny SynthTalk sets and one tiny trained sync expert, shared by test_syncnet and test_metrics.

Built once per test process (lru_cache): generating and training cost most of those tests'
time, and several tests read the same results.
"""

import atexit
import functools
import shutil
import tempfile

from s3d_fast.data.synthtalk.generate import SynthConfig, generate_dataset

TINY_SYNC = SynthConfig(identities=10, heldout=2, clips=1, seconds=4.0, size=64, views=0, seed=3)
# Mouth-opening checks need a mouth of more than a few pixels: 128^2.
TINY_MOUTH = SynthConfig(identities=2, heldout=1, clips=1, seconds=3.0, size=128, views=0, seed=5)


def _make(config):
    root = tempfile.mkdtemp(prefix="s3d_sync_test_")
    atexit.register(shutil.rmtree, root, True)
    generate_dataset(root, config, progress=False)
    return root


@functools.cache
def sync_set() -> str:
    return _make(TINY_SYNC)


@functools.cache
def mouth_set() -> str:
    return _make(TINY_MOUTH)


@functools.cache
def trained_syncnet():
    """(frozen syncnet, stats) after a short training on :func:`sync_set`."""
    from s3d_fast.model.syncnet import SyncNetConfig, freeze
    from s3d_fast.training.syncnet import train_syncnet

    config = SyncNetConfig(face_size=32, face_channels=(16, 32, 48, 64), audio_channels=(16, 32, 48, 64), embed_dim=64)
    net, stats = train_syncnet(
        sync_set(), config, steps=600, batch_size=32, lr=1e-3, seed=0, progress=False, num_threads=1
    )
    return freeze(net), stats
