// The page of `s3d-fast serve`: one session, one peer connection (sound + picture from the
// server, camera messages back on a data channel), the portrait and speech sent over HTTP.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const YAW = 45, PITCH = 30, ZOOM = [0.6, 1.6];
  const state = {
    sid: null, pc: null, channel: null, portrait: null, speech: null,
    camera: { yaw: 0, pitch: 0, distance: 1 }, shownCamera: null,
    framesReceived: 0, fps: 0, renderMs: null, latencyMs: null, jitterMs: 0, offsetMs: null,
    dropped: 0, playAt: null, playing: false, orbit: false, reconnecting: false,
    mic: null, micSender: null, utterances: 0,
  };

  // ------------------------------------------------------------------ messages
  function showError(message) {
    const el = $("error");
    el.textContent = message;
    el.hidden = !message;
  }
  function setStatus(text) { $("status").textContent = text; }

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    let response;
    try { response = await fetch(path, init); }
    catch (e) { throw new Error("the server cannot be reached (" + e.message + ")"); }
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (!response.ok) throw new Error((data && data.error) || ("the server answered " + response.status));
    return data;
  }
  async function attempt(action) {
    try { showError(""); return await action(); }
    catch (e) { showError(e.message); return undefined; }
  }

  // ------------------------------------------------------------------ the session
  async function connect() {
    state.sid = null;
    const session = await api("POST", "/api/sessions");
    state.sid = session.id;
    const pc = state.pc = new RTCPeerConnection();
    // Audio both ways: the server's sound in, the microphone out (its track set only while it is on).
    state.micSender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
    if (state.mic) await state.micSender.replaceTrack(state.mic.getAudioTracks()[0]);
    pc.addTransceiver("video", { direction: "recvonly" });
    const channel = state.channel = pc.createDataChannel("control");
    channel.onmessage = (event) => onMessage(JSON.parse(event.data));
    channel.onopen = () => { sendCamera(); sendMicrophone(); };
    pc.ontrack = (event) => {
      if (!video.srcObject) video.srcObject = new MediaStream();
      video.srcObject.addTrack(event.track);
    };
    pc.onconnectionstatechange = () => {
      setStatus("stream " + pc.connectionState);
      if (pc.connectionState === "failed" || pc.connectionState === "closed") reconnect();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    const answer = await api("POST", "/api/sessions/" + state.sid + "/offer",
      { sdp: pc.localDescription.sdp, type: "offer" });
    await pc.setRemoteDescription(answer);
    if (state.portrait) await api("POST", "/api/sessions/" + state.sid + "/portrait", { id: state.portrait });
    if (state.speech) await state.speech();
    updateButtons();
  }
  function iceGathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(resolve, 2000);  // host candidates are enough on a local network
    });
  }
  async function reconnect() {
    if (state.reconnecting) return;
    state.reconnecting = true;
    setStatus("connection lost; starting a fresh session…");
    try {
      if (state.pc) state.pc.close();
      video.srcObject = null;
      await connect();
    } catch (e) { showError(e.message); }
    finally { state.reconnecting = false; }
  }
  window.addEventListener("pagehide", () => {
    if (state.sid) navigator.sendBeacon("/api/sessions/" + state.sid + "/close");
  });

  function onMessage(message) {
    if (message.type === "frame") {
      state.renderMs = message.renderMs;
      state.shownCamera = message.camera;
      state.dropped = message.dropped;
      if (message.index >= 0 && state.playAt !== null) {
        state.latencyMs = performance.now() - (state.playAt + (message.index * 1000) / 25) + state.jitterMs;
      }
    } else if (message.type === "ended") {
      state.playing = false;
      state.utterances += 1;
      $("download").hidden = false;
      setStatus("done: " + message.sent + " frames sent, " + message.dropped + " dropped");
      updateButtons();
    } else if (message.type === "error") {
      state.playing = false;
      showError(message.message);
      updateButtons();
    }
  }

  // ------------------------------------------------------------------ portrait
  async function usePortrait(describe) {
    let info = describe;
    $("bake").hidden = false;
    while (info.status === "baking") {
      $("bake-bar").style.width = Math.round(100 * info.progress) + "%";
      $("portrait-state").textContent = "baking: " + info.stage + " (" + Math.round(100 * info.progress) + " %)…";
      await new Promise((r) => setTimeout(r, 200));
      info = await api("GET", "/api/portraits/" + info.id);
    }
    $("bake-bar").style.width = "100%";
    if (info.status === "error") {
      $("bake").hidden = true;
      $("portrait-state").textContent = "portrait not usable";
      throw new Error(info.error);
    }
    await api("POST", "/api/sessions/" + state.sid + "/portrait", { id: info.id });
    state.portrait = info.id;
    $("portrait-state").textContent = info.name + " (baked in " + info.bake_seconds.toFixed(1) + " s)";
    updateButtons();
  }
  $("portrait-input").addEventListener("change", () => attempt(async () => {
    const file = $("portrait-input").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    $("portrait-state").textContent = "uploading…";
    await usePortrait(await api("POST", "/api/portraits", form));
  }));
  $("demo-portrait").addEventListener("click", () => attempt(async () => {
    await usePortrait(await api("POST", "/api/portraits/demo"));
  }));

  // ------------------------------------------------------------------ speech
  function speechReady(info) {
    $("speech-state").textContent = info.name + ": " + info.seconds.toFixed(2) + " s";
    updateButtons();
  }
  $("speech-input").addEventListener("change", () => attempt(async () => {
    const file = $("speech-input").files[0];
    if (!file) return;
    const send = async () => {
      const form = new FormData();
      form.append("file", file);
      speechReady(await api("POST", "/api/sessions/" + state.sid + "/speech", form));
    };
    state.speech = null;
    $("speech-state").textContent = "reading…";
    await send();
    state.speech = send;
    updateButtons();
  }));
  $("speak-text").addEventListener("click", () => attempt(async () => {
    const text = $("text-input").value;
    const send = async () => speechReady(await api("POST", "/api/sessions/" + state.sid + "/text", { text }));
    state.speech = null;
    $("speech-state").textContent = "speaking…";
    await send();
    state.speech = send;
    updateButtons();
  }));

  // ------------------------------------------------------------------ microphone
  function sendMicrophone() {
    const c = state.channel;
    const message = { type: "microphone", on: !!state.mic, echo: $("mic-echo").checked };
    if (c && c.readyState === "open") c.send(JSON.stringify(message));
  }
  $("mic-button").addEventListener("click", () => attempt(async () => {
    const button = $("mic-button");
    if (state.mic) {
      state.mic.getTracks().forEach((t) => t.stop());
      state.mic = null;
      if (state.micSender) await state.micSender.replaceTrack(null);
    } else {
      if (!navigator.mediaDevices) throw new Error("this browser gives the microphone only to secure pages (https or localhost)");
      let stream;
      try { stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } }); }
      catch (e) { throw new Error("the microphone is not available: " + e.message); }
      state.mic = stream;
      if (state.micSender) await state.micSender.replaceTrack(stream.getAudioTracks()[0]);
      if (!state.portrait) showError("choose a portrait first: the head mouths what you say once it has one");
    }
    button.textContent = state.mic ? "Microphone: on" : "Microphone: off";
    button.setAttribute("aria-pressed", String(!!state.mic));
    sendMicrophone();
  }));
  $("mic-echo").addEventListener("change", sendMicrophone);

  // ------------------------------------------------------------------ playback
  function updateButtons() {
    $("play").disabled = !(state.sid && state.portrait && state.speech) || state.playing;
    $("stop").disabled = !state.playing;
    $("download").href = state.sid ? "/api/sessions/" + state.sid + "/last.mp4" : "#";
  }
  $("play").addEventListener("click", () => attempt(async () => {
    video.play().catch(() => {});
    state.playAt = performance.now();
    state.latencyMs = null;
    await api("POST", "/api/sessions/" + state.sid + "/play");
    state.playing = true;
    setStatus("playing");
    updateButtons();
  }));
  $("stop").addEventListener("click", () => attempt(async () => {
    await api("POST", "/api/sessions/" + state.sid + "/stop");
    state.playing = false;
    setStatus("stopped");
    updateButtons();
  }));

  // ------------------------------------------------------------------ camera
  let pending = false;
  function sendCamera() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const c = state.channel;
      if (c && c.readyState === "open") c.send(JSON.stringify(Object.assign({ type: "camera" }, state.camera)));
    });
  }
  function setCamera(yaw, pitch, distance) {
    state.camera = {
      yaw: Math.max(-YAW, Math.min(YAW, yaw)),
      pitch: Math.max(-PITCH, Math.min(PITCH, pitch)),
      distance: Math.max(ZOOM[0], Math.min(ZOOM[1], distance)),
    };
    sendCamera();
  }
  let drag = null;
  video.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, yaw: state.camera.yaw, pitch: state.camera.pitch };
    video.setPointerCapture(e.pointerId);
  });
  video.addEventListener("pointermove", (e) => {
    if (!drag) return;
    // The head follows the pointer, as if held: dragging right turns its face to the right
    // of the picture (yaw falls, as render --yaw counts it), dragging down tilts it down.
    setCamera(drag.yaw - (e.clientX - drag.x) * 0.25, drag.pitch - (e.clientY - drag.y) * 0.25, state.camera.distance);
  });
  const endDrag = () => { drag = null; };
  video.addEventListener("pointerup", endDrag);
  video.addEventListener("pointercancel", endDrag);
  video.addEventListener("wheel", (e) => {
    e.preventDefault();
    setCamera(state.camera.yaw, state.camera.pitch, state.camera.distance * Math.exp(e.deltaY * 0.001));
  }, { passive: false });
  $("reset-view").addEventListener("click", () => {
    $("auto-orbit").checked = false;
    state.orbit = false;
    setCamera(0, 0, 1);
  });
  $("auto-orbit").addEventListener("change", () => {
    state.orbit = $("auto-orbit").checked;
    if (state.orbit) orbit(performance.now());
  });
  function orbit(start) {
    const step = (now) => {
      if (!state.orbit) return;
      setCamera(20 * Math.sin((2 * Math.PI * (now - start)) / 8000), state.camera.pitch, state.camera.distance);
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  // ------------------------------------------------------------------ statistics
  async function poll() {
    const pc = state.pc;
    if (!pc) return;
    let playout = {};
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "video") {
        state.framesReceived = s.framesReceived || 0;
        state.fps = s.framesPerSecond || 0;
        if (s.jitterBufferEmittedCount) state.jitterMs = (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
      }
      if (s.kind === "audio") state.soundEnergy = s.totalAudioEnergy || 0;
      if (s.estimatedPlayoutTimestamp) playout[s.kind] = s.estimatedPlayoutTimestamp;
    });
    state.offsetMs = playout.audio && playout.video ? playout.video - playout.audio : null;
    $("o-fps").textContent = state.fps.toFixed(0) + " fps";
    $("o-render").textContent = state.renderMs === null ? "– ms render" : state.renderMs.toFixed(0) + " ms render";
    $("o-latency").textContent = state.latencyMs === null ? "– ms latency" : state.latencyMs.toFixed(0) + " ms latency";
    $("o-dropped").textContent = state.dropped + " dropped";
  }
  setInterval(() => { poll().catch(() => {}); }, 250);

  window.s3d = {
    stats: () => ({
      framesReceived: state.framesReceived,
      fps: state.fps,
      lastFrameLatencyMs: state.latencyMs,
      audioVideoOffsetMs: state.offsetMs,
      camera: Object.assign({}, state.shownCamera || state.camera),
      renderMs: state.renderMs,
      dropped: state.dropped,
      soundEnergy: state.soundEnergy || 0, // the sound played out so far (WebRTC's totalAudioEnergy)
      playing: state.playing,
      microphone: !!state.mic,
      utterances: state.utterances,
      session: state.sid,
      connected: !!state.pc && state.pc.connectionState === "connected",
    }),
    // Mean RGB of a box of the frame shown now, in the video's own pixels (for tests).
    sample: (x, y, w, h) => {
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(video, 0, 0);
      return Array.from(ctx.getImageData(x, y, w, h).data);
    },
  };

  // ------------------------------------------------------------------ start
  attempt(async () => {
    const info = await api("GET", "/api/info");
    if (!info.espeak) {
      $("espeak-note").hidden = false;
      $("espeak-note").textContent = "Typed text needs espeak-ng on the server: " + info.espeakInstall;
      $("speak-text").disabled = true;
    }
    await connect();
    setStatus("connected: choose a portrait and speech, then play");
  });
})();
