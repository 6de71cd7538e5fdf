"""The bundled demo: checkpoint, portrait and sentence, shipped inside the package."""

from __future__ import annotations

import os

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "demo")
DEMO_CHECKPOINT = os.path.join(ASSETS, "checkpoint")
DEMO_IMAGE = os.path.join(ASSETS, "image.png")
DEMO_SPEECH = os.path.join(ASSETS, "speech.wav")
