"""The bundled demo assets: the committed speech is what tools/make_demo_assets.py makes,
and the demo image it takes from a data set is a held-out identity's aligned frame that
the renderer uses as it is."""

import numpy as np
import pytest
from tool_loader import load_tool

from s3d_fast.data import audio as audio_mod
from s3d_fast.data.manifest import load_manifest
from s3d_fast.data.synthtalk.generate import SynthConfig, generate_dataset
from s3d_fast.render import api, source


@pytest.fixture(scope="module")
def tool():
    return load_tool("make_demo_assets")


def test_bundled_speech_is_reproducible_and_speaks(tool, tmp_path):
    assert tool.main(["--out", str(tmp_path)]) == 0
    made, speech = audio_mod.load_audio(tmp_path / "speech.wav"), audio_mod.load_audio(api.DEMO_SPEECH)
    # The same sound: equal samples to within one step of 16-bit PCM (not the same bytes,
    # which a change of header or writer would break).
    assert made.sample_rate == speech.sample_rate and made.samples.shape == speech.samples.shape
    np.testing.assert_allclose(made.samples, speech.samples, rtol=0, atol=1.5 / 32768)
    assert speech.sample_rate == 16000 and speech.duration == pytest.approx(4.0)
    assert not speech.is_silent and speech.clipped_fraction == 0.0
    # Speech with pauses: loud syllables and quiet gaps, not a steady tone.
    frames = speech.samples[: 100 * 640].reshape(100, 640)
    rms = np.sqrt((frames**2).mean(1))
    assert rms.max() > 0.1 and (rms < 0.1 * rms.max()).sum() >= 10


def test_demo_image_is_a_held_out_dataset_frame(tool, tmp_path):
    ds = tmp_path / "ds"
    generate_dataset(
        str(ds), SynthConfig(identities=2, clips=1, seconds=0.4, size=64, views=0, heldout=1), progress=False
    )
    out = tmp_path / "demo"
    assert tool.main(["--dataset", str(ds), "--out", str(out)]) == 0
    m = load_manifest(ds)
    clip = m.clips_in("heldout")[0]
    src = source.load_source(out / "image.png", 64)
    assert src.kind == "dataset-frame" and src.mask is not None and (src.mask == 1).any()
    with np.load(m.path(clip["meta"])) as z:
        i = int(np.argmin(z["visemes"][:, 0]))
        np.testing.assert_allclose(src.c2w, z["c2w"][i], atol=1e-6)
        np.testing.assert_array_equal(src.mask, z["masks"][i])
        np.testing.assert_allclose(src.K, z["K"], atol=1e-5)
    with pytest.raises(SystemExit, match="no held-out clip"):
        tool.main(["--dataset", str(ds), "--out", str(out), "--identity", "nobody"])
