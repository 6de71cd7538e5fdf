"""The FastAPI application: the page, the HTTP API for programs, the WebRTC offer/answer.

Every refusal is JSON ``{"error": message}`` with its status, which the page shows as it
is. Work that takes CPU time (decoding uploads, espeak-ng, writing an mp4) runs on a
thread, so the event loop keeps sending the live streams' frames meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import os
from typing import Annotated, Optional

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ..errors import S3DError
from ..render import api, cameras
from ..version import __version__
from . import mp4, security, speech
from .camera import Camera
from .errors import LimitError, ServeError
from .limits import Limits
from .portraits import PortraitCache
from .sessions import Sessions

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
BAKE_WAIT = 300.0  # seconds /api/render waits for a portrait to bake
FORM_SLACK = 64 * 1024  # a multipart body's own bytes beyond its files


def create_app(renderer, limits: Optional[Limits] = None, token: Optional[str] = None, adapt_steps: int = 0) -> FastAPI:
    """``adapt_steps``: bake-time adaptation of each portrait (``Renderer.bake``)."""
    limits = (limits or Limits()).check()
    portraits = PortraitCache(renderer, limits, adapt_steps)
    sessions = Sessions(limits)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # The model and libraries loaded so far live as long as the server: kept out of the
        # collector's full passes, whose pause over them cost frames (skipped as late)
        gc.collect()
        gc.freeze()
        sessions.start_reaper()
        try:
            yield
        finally:
            await sessions.stop_reaper()
            await sessions.close_all()
            portraits.close()

    app = FastAPI(title="s3d-fast serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.portraits, app.state.sessions, app.state.limits = portraits, sessions, limits

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if not security.token_matches(token, request.headers, request.query_params, request.cookies):
            return _error(
                "this server needs its access token: open the address it printed at start (with ?token=...), "
                "or send the header 'Authorization: Bearer <token>'",
                401,
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > 2 * limits.max_upload_bytes + FORM_SLACK:
            return _error(f"the request is {int(length):,} bytes, over this server's upload limit", 413)
        response = await call_next(request)
        if token is not None and request.query_params.get(security.TOKEN_QUERY):
            response.set_cookie(
                security.TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
            )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.exception_handler(S3DError)
    async def refused(request: Request, exc: S3DError):
        return _error(str(exc), getattr(exc, "status", 400))

    # ------------------------------------------------------------------ the page
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/info")
    async def info():
        return {
            "version": __version__,
            "device": renderer.device.type,
            "espeak": speech.espeak_available(),
            "espeakInstall": speech.ESPEAK_INSTALL,
            "limits": {
                "maxUploadBytes": limits.max_upload_bytes,
                "maxImagePixels": limits.max_image_pixels,
                "maxSpeechSeconds": limits.max_speech_seconds,
                "maxSessions": limits.max_sessions,
            },
            "sessions": len(sessions),
        }

    # ------------------------------------------------------------------ portraits
    @app.post("/api/portraits")
    async def upload_portrait(file: Annotated[UploadFile, File()]):
        data = await _read(file, limits, "portrait")
        entry = await run_in_threadpool(portraits.add_upload, data, file.filename)
        return entry.describe()

    @app.post("/api/portraits/demo")
    async def demo_portrait():
        return portraits.add_demo().describe()

    @app.get("/api/portraits")
    async def list_portraits():
        return {"portraits": portraits.list()}

    @app.get("/api/portraits/{pid}")
    async def portrait_status(pid: str):
        return portraits.get(pid).describe()

    @app.delete("/api/portraits/{pid}")
    async def delete_portrait(pid: str):
        portraits.delete(pid)
        return {"deleted": pid}

    # ------------------------------------------------------------------ sessions
    @app.post("/api/sessions")
    async def new_session():
        return {"id": sessions.create().id}

    @app.get("/api/sessions/{sid}")
    async def session_status(sid: str):
        return sessions.get(sid).status()

    @app.delete("/api/sessions/{sid}")
    async def end_session(sid: str):
        sessions.get(sid)
        await sessions.close(sid)
        return {"closed": sid}

    @app.post("/api/sessions/{sid}/close")  # navigator.sendBeacon can only POST
    async def end_session_beacon(sid: str):
        await sessions.close(sid)
        return {"closed": sid}

    @app.post("/api/sessions/{sid}/offer")
    async def offer(sid: str, request: Request):
        session = sessions.get(sid)
        body = await _json(request)
        if not isinstance(body.get("sdp"), str) or body.get("type") != "offer":
            raise ServeError('the offer must be JSON {"sdp": "...", "type": "offer"}')
        answer = await session.answer(body["sdp"], body["type"])
        return {"sdp": answer.sdp, "type": answer.type}

    @app.post("/api/sessions/{sid}/portrait")
    async def use_portrait(sid: str, request: Request):
        session = sessions.get(sid)
        body = await _json(request)
        session.set_portrait(portraits.ready(str(body.get("id", ""))))
        return session.status()

    @app.post("/api/sessions/{sid}/speech")
    async def upload_speech(sid: str, file: Annotated[UploadFile, File()]):
        session = sessions.get(sid)
        data = await _read(file, limits, "speech")
        session.speech = await run_in_threadpool(speech.decode_speech, data, file.filename, limits)
        return session.speech.describe()

    @app.post("/api/sessions/{sid}/text")
    async def speak(sid: str, request: Request):
        session = sessions.get(sid)
        body = await _json(request)
        session.speech = await run_in_threadpool(speech.speak_text, str(body.get("text", "")), limits)
        return session.speech.describe()

    @app.post("/api/sessions/{sid}/play")
    async def play(sid: str):
        session = sessions.get(sid)
        if session.portrait is None:
            raise ServeError("choose a portrait first (upload a photo or use the demo)", 409)
        if session.speech is None:
            raise ServeError("give the head something to say first (a sound file or typed text)", 409)
        if not session.connected:
            raise ServeError("the stream is not connected; reload the page", 409)
        session.player.play(session.speech.samples)
        return session.status()

    @app.post("/api/sessions/{sid}/stop")
    async def stop(sid: str):
        session = sessions.get(sid)
        session.player.stop()
        return session.status()

    @app.post("/api/sessions/{sid}/camera")
    async def set_camera(sid: str, request: Request):
        session = sessions.get(sid)
        session.player.set_camera(Camera.parse(await _json(request)))
        return session.player.camera.describe()

    @app.get("/api/sessions/{sid}/last.mp4")
    async def last_utterance(sid: str):
        session = sessions.get(sid)
        utt = session.player.last
        if utt is None:
            raise ServeError("nothing has been played in this session yet", 404)
        current = session.player.camera
        recorded = dict(utt.cameras)

        def pose(i: int) -> np.ndarray:
            known = [k for k in recorded if k <= i]  # a skipped frame: the camera of the one before it
            camera = recorded[max(known)] if known else current
            return camera.pose(utt.identity.source.c2w)

        path = await run_in_threadpool(mp4.render_mp4, utt.identity, utt.samples, pose)
        return _mp4(path, "s3d_utterance.mp4")

    # ------------------------------------------------------------------ one-shot render
    @app.post("/api/render")
    async def render(
        portrait: Annotated[Optional[UploadFile], File()] = None,
        portrait_id: Annotated[Optional[str], Form()] = None,
        speech_file: Annotated[Optional[UploadFile], File(alias="speech")] = None,
        text: Annotated[Optional[str], Form()] = None,
        yaw: Annotated[Optional[float], Form()] = None,
        pitch: Annotated[Optional[float], Form()] = None,
        roll: Annotated[Optional[float], Form()] = None,
        orbit: Annotated[Optional[float], Form()] = None,
        fps: Annotated[int, Form()] = 25,
        size: Annotated[Optional[int], Form()] = None,
    ):
        if portrait is not None and portrait_id:
            raise ServeError("give either a portrait file or a portrait_id, not both")
        if (speech_file is None) == (text is None):
            raise ServeError("give the speech as either a sound file (speech) or text, one of them")
        api.check_fps(fps)
        api.check_size(size)
        if portrait is not None:
            data = await _read(portrait, limits, "portrait")
            entry = await run_in_threadpool(portraits.add_upload, data, portrait.filename)
        else:
            entry = portraits.get(portrait_id) if portrait_id else portraits.add_demo()
        if speech_file is not None:
            said = await run_in_threadpool(
                speech.decode_speech, await _read(speech_file, limits, "speech"), speech_file.filename, limits
            )
        else:
            said = await run_in_threadpool(speech.speak_text, text, limits)
        entry = await run_in_threadpool(portraits.wait, entry.id, BAKE_WAIT)
        identity = entry.identity
        n_frames = api.frame_count(said.samples.shape[0], speech.SAMPLE_RATE, fps)
        offsets = {"yaw": yaw or 0.0, "pitch": pitch or 0.0, "roll": roll or 0.0}
        poses = cameras.CameraPath(identity.source.c2w, n_frames, orbit=orbit, **offsets)
        path = await run_in_threadpool(mp4.render_mp4, identity, said.samples, poses, fps=fps, size=size)
        return _mp4(path, "s3d_render.mp4")

    return app


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _mp4(path: str, name: str) -> FileResponse:
    return FileResponse(path, media_type="video/mp4", filename=name, background=BackgroundTask(mp4.remove, path))


async def _read(file: UploadFile, limits: Limits, what: str) -> bytes:
    data = await file.read(limits.max_upload_bytes + 1)
    if len(data) > limits.max_upload_bytes:
        raise LimitError(f"the {what} file is over this server's upload limit ({limits.max_upload_bytes:,} bytes)")
    return data


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise ServeError("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise ServeError("the request body must be a JSON object")
    return body
