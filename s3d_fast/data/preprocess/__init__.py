"""Real videos -> the data-set format (docs/design.md section 5): landmarks, alignment, pose, masks.

landmarks.py  mediapipe face mesh (478 points, models inside the wheel) per frame
align.py      FFHQ-style crop from eyes and mouth, smoothed over time; warping
geometry.py   head pose from the 3-D landmarks; face / lip / mouth masks from hulls
pipeline.py   one video end to end (all or nothing), and a folder of them
cli.py        ``s3d-fast preprocess``
"""
