"""``s3d-fast serve``: a live talking head in the browser (issue 15's web layer).

cli.py        the command: options, TLS and token for non-local binds, uvicorn, clean shutdown
app.py        the FastAPI application: the page, the HTTP API, the WebRTC offer/answer
limits.py     the server's limits (upload size, image pixels, speech length, sessions, cache)
errors.py     refusals: one message, one HTTP status, shown on the page
security.py   the access token and the self-signed certificate
portraits.py  baked portraits cached by content, least recently used evicted, baking progress
speech.py     speech from an uploaded sound file or typed text (espeak-ng)
media.py      the aiortc tracks: sound paced by the clock, frames paced by the sound
sessions.py   one viewer's state (portrait, speech, camera, peer connection) and its teardown
mp4.py        an utterance rendered to the mp4 ``s3d-fast render`` writes
static/       the page: plain HTML, JS and CSS, no build step

Only ``cli.py`` is imported by ``s3d-fast --help``; it imports nothing of the web stack.
"""
