"""SynthTalk: a procedural talking-head data set with ground truth, made on the machine.

identity.py   random identities (head shape, skin, eyes, brows, hair, accessories, voice)
phonemes.py   phoneme inventory and random utterances with timings
speech.py     phonemes -> 16 kHz speech (harmonic source through formants, noise for fricatives)
visemes.py    phonemes -> per-frame visemes with co-articulation; blinks; head motion
camera.py     intrinsics, physical camera, head pose folded into camera-to-head, free views
head.py       identity + per-frame state -> list of ellipsoid primitives with materials
raycast.py    vectorised ray casting of clipped ellipsoids, shading, label masks
generate.py   one clip end to end, and a whole data set (resumable per clip)
photo_*.py    the photo style: its identities' look, head/hair/body, scene, light and camera
sheet.py      contact-sheet PNG of identities and mouth shapes
cli.py        ``s3d-fast synth``
"""
