"""``s3d-fast serve``'s page in a real browser: Debian's chromium, headless, driven by
Playwright (pointed at the system browser; Playwright's own download is not used), with the
page's stable hooks (``data-testid`` attributes and ``window.s3d``)."""

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the serve extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from aids.serve_live import LiveServer  # noqa: E402
from s3d_fast.data.npz import load_npz  # noqa: E402
from s3d_fast.render import api  # noqa: E402
from s3d_fast.serve.app import create_app  # noqa: E402

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "serve.png"
SILENCE = 2.0  # seconds of silence after the speech


def speech_then_silence(path):
    """espeak-ng saying a sentence, then SILENCE seconds of nothing; returns the speech's length."""
    import soundfile as sf

    said = subprocess.run(["espeak-ng", "--stdout", "Hello! How are you today, my friend?"], capture_output=True)
    samples, rate = sf.read(io.BytesIO(said.stdout), dtype="float32")
    sf.write(path, np.concatenate([samples, np.zeros(int(SILENCE * rate), np.float32)]), rate)
    return samples.shape[0] / rate


def mouth_box(side=256):
    """(x, y, w, h) around the demo portrait's lips and mouth (labels 2, 3 of its mask), in video pixels."""
    mask = load_npz(os.path.splitext(api.DEMO_IMAGE)[0] + ".npz")["mask"]
    ys, xs = np.nonzero(mask >= 2)
    s = side / mask.shape[0]
    x0, y0, x1, y1 = int(xs.min() * s) - 4, int(ys.min() * s) - 4, int(xs.max() * s) + 5, int(ys.max() * s) + 5
    return x0, y0, x1 - x0, y1 - y0


@pytest.fixture(scope="module")
def server():
    with LiveServer(create_app(api.Renderer(None, "cpu"))) as live:
        yield live


@pytest.fixture
def page(server):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        tab = browser.new_page(viewport={"width": 1000, "height": 700})
        tab.goto(server.url)
        tab.wait_for_function("window.s3d && window.s3d.stats().connected")
        yield tab
        browser.close()


def stats(page):
    return page.evaluate("window.s3d.stats()")


def test_the_page_streams_a_talking_head_turns_it_and_reports_errors(page, server, tmp_path):
    speech_seconds = speech_then_silence(tmp_path / "speech.wav")
    page.get_by_test_id("demo-portrait").click()
    page.wait_for_function("document.querySelector('[data-testid=portrait-state]').textContent.includes('baked')")
    page.get_by_test_id("speech-input").set_input_files(str(tmp_path / "speech.wav"))
    page.wait_for_function("!document.querySelector('[data-testid=play]').disabled")

    box = mouth_box()
    page.get_by_test_id("play").click()
    start, samples, counts, shot = time.monotonic(), [], [], False
    while time.monotonic() - start < speech_seconds + SILENCE:
        samples.append((time.monotonic() - start, np.array(page.evaluate(f"window.s3d.sample{box}"), np.float32)))
        counts.append(stats(page)["framesReceived"])
        if not shot and samples[-1][0] > 1.2:  # mid-sentence, for the README
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            shot = True
        time.sleep(0.05)
    # Frames keep arriving through the utterance.
    quarters = np.array_split(np.array(counts), 4)
    assert all(q[-1] > q[0] for q in quarters[:3]), counts
    # The mouth moves while the speech plays and holds still in the silence after it.
    change = [(t, float(np.abs(b - a).mean())) for (_, a), (t, b) in zip(samples, samples[1:])]
    speaking = [c for t, c in change if 0.5 < t < speech_seconds - 0.3]
    silent = [c for t, c in change if t > speech_seconds + 0.8]
    assert speaking and silent
    print("mouth change per sample, speaking:", np.round(speaking, 1), "silent:", np.round(silent, 2))
    assert max(speaking) > 4.0 and np.mean(speaking) > 4 * max(np.mean(silent), 0.05), (speaking, silent)
    assert max(silent) < 1.0, silent
    s = stats(page)
    assert s["fps"] > 0 and s["lastFrameLatencyMs"] is not None and set(s["camera"]) == {"yaw", "pitch", "distance"}

    # A drag to the right turns the camera's yaw up, reported back with the frames it reaches.
    video = page.get_by_test_id("video").bounding_box()
    x, y = video["x"] + video["width"] / 2, video["y"] + video["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 80, y, steps=5)
    page.mouse.up()
    page.wait_for_function("window.s3d.stats().camera.yaw > 15", timeout=20000)
    page.get_by_test_id("reset-view").click()
    page.wait_for_function("window.s3d.stats().camera.yaw === 0", timeout=20000)

    # A corrupt upload: a clear message on the page, and the server keeps serving.
    page.get_by_test_id("portrait-input").set_input_files(
        files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8 broken"}]
    )
    error = page.get_by_test_id("error")
    error.wait_for(state="visible")
    assert "not an image" in error.text_content()
    assert server.api("GET", "api/info").ok
    page.get_by_test_id("play").click()
    before = stats(page)["framesReceived"]
    page.wait_for_function(f"window.s3d.stats().framesReceived > {before + 10}", timeout=20000)
