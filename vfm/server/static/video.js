// vfm web page, video mode: upload a video, prompt objects on any frame, track them as a server job,
// scrub through the tracked masks, play the overlay and export the results. Plain ES2017, no build
// step; loaded after app.js, whose API helpers (window.vfm.lib) it reuses.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const lib = window.vfm.lib;
  const VIDEO_EXT = /\.(mp4|m4v|mov|mkv|webm|avi|mpe?g|wmv|flv|ts|mts|m2ts|3gp|ogv)$/i;
  const FINISHED = ["done", "failed", "cancelled"];
  const FRAME_CACHE = 48; // decoded frames kept for scrubbing back and forth
  const MAX_OBJECT = 255; // masks of ids above 255 are 16-bit PNGs the page cannot read back

  // The DAVIS / PASCAL VOC palette, as vfm/video/outputs.py writes it into the mask PNGs: object id
  // k has colour PALETTE[k] (on the page, in the PNGs and in overlay.mp4 alike).
  const PALETTE = [];
  const PALETTE_ID = new Map(); // (r << 16 | g << 8 | b) -> id
  for (let i = 0; i < 256; i++) {
    let c = i, r = 0, g = 0, b = 0;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    PALETTE.push([r, g, b]);
    PALETTE_ID.set((r << 16) | (g << 8) | b, i);
  }
  const css = (id) => "rgb(" + PALETTE[id].join(",") + ")";

  const vs = {
    active: false,
    video: null,        // GET /v1/videos/{id}: {video_id, width, height, frames, fps, frames_ready, ...}
    fileName: null,
    frame: 0,           // the frame on the scrubber
    shown: -1,          // the frame drawn on the image canvas
    prompts: [],        // [{frame, object, kind: "point", x, y, label} | {frame, object, kind: "box", box}]
    history: [],        // [{item, replaced}] for undo
    object: 1,          // the object the next prompt is for
    job: null,          // the last GET /v1/jobs/{id} answer
    sent: null,         // the body of the last POST .../track
    results: null,      // job.results once done
    maskIds: null,      // Uint8Array (h*w, object ids) of maskFrame
    maskFrame: -1,      // the frame whose mask is drawn on the overlay canvas (-1: none)
    drag: null,
    frameSeq: 0,
    uploadSeq: 0,
    frames: new Map(),  // frame -> Promise<ImageBitmap>
    masks: new Map(),   // frame -> Promise<Uint8Array | null> for the current job
    overlayUrl: null,
    extractMsg: null,
  };

  const oneLine = (msg) => String(msg || "").split("\n")[0].trim();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const authHeaders = () => (lib.apiKey() ? { Authorization: "Bearer " + lib.apiKey() } : {});
  const lastFrame = () => Math.max(0, (vs.video.frames || vs.video.frames_ready || 1) - 1);

  function accepts(file) {
    return !!file && ((file.type || "").startsWith("video/") || VIDEO_EXT.test(file.name || ""));
  }

  async function fetchBlob(path) {
    const resp = await fetch(path, { headers: authHeaders() });
    if (!resp.ok) {
      let msg = resp.statusText || "HTTP " + resp.status;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      const err = new Error(oneLine(msg));
      err.status = resp.status;
      throw err;
    }
    return resp.blob();
  }

  // ------------------------------------------------------------------ upload
  function upload(file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/videos");
      const headers = authHeaders();
      for (const k in headers) xhr.setRequestHeader(k, headers[k]);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status >= 200 && xhr.status < 300 && body) { resolve(body); return; }
        let msg = (body && body.error) || xhr.statusText || "HTTP " + xhr.status;
        if (xhr.status === 401) msg += " — enter the server's API key at the top right";
        reject(new Error(oneLine(msg)));
      };
      xhr.onerror = () => reject(new Error("the server cannot be reached"));
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  async function open(file) {
    if (!file) return;
    const seq = ++vs.uploadSeq;
    const bar = $("track-progress");
    lib.status("uploading " + file.name + "…");
    let info;
    try {
      info = await upload(file, (f) => {
        if (seq === vs.uploadSeq) lib.status("uploading " + file.name + ": " + Math.round(100 * f) + "%");
      });
    } catch (e) {
      if (seq === vs.uploadSeq) lib.status("video upload failed: " + e.message, true);
      return;
    }
    if (seq !== vs.uploadSeq) return;
    enter(info, file.name);
    bar.hidden = true;
    await showFrame(0);
    watchExtraction(info.video_id);
  }

  // Switch the page to this video: canvases at the video's size, no prompts, no job.
  function enter(info, fileName) {
    lib.closeImage();
    stopPlayback();
    if (vs.overlayUrl) URL.revokeObjectURL(vs.overlayUrl);
    Object.assign(vs, {
      active: true, video: info, fileName: fileName || info.file_name || "video", frame: 0, shown: -1,
      prompts: [], history: [], object: 1, job: null, sent: null, results: null, maskIds: null, maskFrame: -1,
      drag: null, frames: new Map(), masks: new Map(), overlayUrl: null,
    });
    vs.frameSeq++;
    for (const id of ["image", "overlay", "marks"]) {
      $(id).width = info.width; $(id).height = info.height;
    }
    for (const id of ["overlay", "marks"]) $(id).getContext("2d").clearRect(0, 0, info.width, info.height);
    $("video-bar").hidden = false;
    $("image-side").hidden = true;
    $("video-side").hidden = false;
    $("stage").classList.remove("empty");
    $("object").value = "1";
    setScrubberMax();
    setJobButtons();
    renderPrompts();
    lib.fitCanvas();
    vs.extractMsg = describe(info);
    lib.status(vs.extractMsg);
  }

  function describe(info) {
    const base = vs.fileName + ": " + info.width + "×" + info.height + ", " + (info.frames || "?") + " frames at " +
      (+info.fps.toFixed(3)) + " fps";
    const total = info.frames || 0;
    if (!total || info.frames_ready < total) return base + " — decoding frames " + info.frames_ready + "/" + (total || "?");
    return base + " — click on an object (left: +, right: −, drag: box), then Track";
  }

  // Poll the frame extraction; the status line shows it until something else is said there.
  async function watchExtraction(videoId) {
    let same = 0, last = -1;
    while (vs.active && vs.video && vs.video.video_id === videoId) {
      const total = vs.video.frames || 0;
      if (total && vs.video.frames_ready >= total) break;
      if (same > 40) break; // the decoder stopped early (a broken tail): the scrubber keeps what exists
      await sleep(250);
      let info;
      try { info = await lib.api("/v1/videos/" + videoId); } catch (e) { return; }
      if (!vs.video || vs.video.video_id !== videoId) return;
      same = info.frames_ready === last ? same + 1 : 0;
      last = info.frames_ready;
      vs.video = info;
      setScrubberMax();
      const msg = describe(info);
      if ($("status").textContent === vs.extractMsg) lib.status(msg);
      vs.extractMsg = msg;
    }
    if (vs.video && vs.video.video_id === videoId && $("status").textContent === vs.extractMsg) {
      vs.extractMsg = describe(vs.video);
      lib.status(vs.extractMsg);
    }
  }

  // Leave the video mode (an image was opened).
  function leave() {
    if (!vs.active) return;
    stopPlayback();
    vs.active = false;
    vs.frameSeq++; vs.uploadSeq++;
    $("video-bar").hidden = true;
    $("image-side").hidden = false;
    $("video-side").hidden = true;
  }

  // ------------------------------------------------------------------ frames and masks
  function setScrubberMax() {
    const last = lastFrame();
    for (const id of ["frame", "frame-number"]) $(id).max = String(last);
    $("frame-count").textContent = "/ " + last;
  }

  function frameBitmap(n) {
    let p = vs.frames.get(n);
    if (!p) {
      p = fetchBlob("/v1/videos/" + vs.video.video_id + "/frames/" + n + ".jpg").then((b) => createImageBitmap(b));
      p.catch(() => vs.frames.delete(n));
      vs.frames.set(n, p);
      while (vs.frames.size > FRAME_CACHE) vs.frames.delete(vs.frames.keys().next().value);
    }
    return p;
  }

  // Frame n's object ids from the job's DAVIS PNG: the browser decodes the palette to RGB, and the
  // palette colours map back to ids one to one.
  function maskIds(n) {
    let p = vs.masks.get(n);
    if (!p) {
      const path = vs.results.masks.replace("{frame}", String(n));
      const w = vs.video.width, h = vs.video.height;
      p = fetchBlob(path).then(async (blob) => {
        const bmp = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
        const c = document.createElement("canvas");
        c.width = w; c.height = h;
        const ctx = c.getContext("2d");
        ctx.drawImage(bmp, 0, 0);
        const d = ctx.getImageData(0, 0, w, h).data;
        const ids = new Uint8Array(w * h);
        for (let i = 0, o = 0; i < ids.length; i++, o += 4) {
          ids[i] = PALETTE_ID.get((d[o] << 16) | (d[o + 1] << 8) | d[o + 2]) || 0;
        }
        return ids;
      }, (e) => { if (e.status === 404) return null; throw e; }); // 404: a frame the job did not track
      p.catch(() => vs.masks.delete(n));
      vs.masks.set(n, p);
    }
    return p;
  }

  async function showFrame(n) {
    if (!vs.video) return;
    n = Math.min(Math.max(0, Math.round(Number(n) || 0)), lastFrame());
    stopPlayback();
    vs.frame = n;
    $("frame").value = String(n);
    $("frame-number").value = String(n);
    drawMarks();
    const seq = ++vs.frameSeq;
    const job = vs.results;
    try {
      const [bmp, ids] = await Promise.all([frameBitmap(n), job ? maskIds(n) : Promise.resolve(null)]);
      if (seq !== vs.frameSeq) return;
      $("image").getContext("2d").drawImage(bmp, 0, 0, vs.video.width, vs.video.height);
      vs.shown = n;
      drawMask(job ? ids : null, n);
    } catch (e) {
      if (seq === vs.frameSeq) lib.status("frame " + n + ": " + e.message, true);
    }
  }

  // Every object in its palette colour: a translucent fill and an opaque outline, as in image mode.
  function drawMask(ids, n) {
    const ov = $("overlay"), ctx = ov.getContext("2d");
    const w = ov.width, h = ov.height;
    ctx.clearRect(0, 0, w, h);
    vs.maskIds = ids; vs.maskFrame = ids ? n : -1;
    if (!ids) return;
    const img = ctx.createImageData(w, h);
    const d = img.data;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x, id = ids[i];
        if (!id) continue;
        const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
          ids[i - 1] !== id || ids[i + 1] !== id || ids[i - w] !== id || ids[i + w] !== id;
        const c = PALETTE[id], o = i * 4;
        d[o] = c[0]; d[o + 1] = c[1]; d[o + 2] = c[2]; d[o + 3] = edge ? 255 : 110;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function drawMarks() {
    const mk = $("marks"), ctx = mk.getContext("2d");
    ctx.clearRect(0, 0, mk.width, mk.height);
    if (!vs.video) return;
    const s = Math.max(mk.width, mk.height) / 400;
    const box = (b, id) => {
      ctx.lineWidth = Math.max(1, 1.5 * s);
      ctx.strokeStyle = "#fff";
      ctx.setLineDash([]);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      ctx.strokeStyle = css(id);
      ctx.setLineDash([6 * s, 4 * s]);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      ctx.setLineDash([]);
    };
    for (const p of vs.prompts) if (p.frame === vs.frame && p.kind === "box") box(p.box, p.object);
    if (vs.drag && vs.drag.box) box(vs.drag.box, vs.object);
    for (const p of vs.prompts) {
      if (p.frame !== vs.frame || p.kind !== "point") continue;
      const r = Math.max(3, 5 * s);
      ctx.beginPath();
      ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
      ctx.fillStyle = p.label ? css(p.object) : "#111";
      ctx.fill();
      ctx.lineWidth = Math.max(1, 1.5 * s);
      ctx.strokeStyle = p.label ? "#fff" : css(p.object);
      ctx.stroke();
      if (!p.label) { // a minus sign marks negative points
        ctx.beginPath();
        ctx.moveTo(p.x - r * 0.6, p.y); ctx.lineTo(p.x + r * 0.6, p.y);
        ctx.strokeStyle = "#fff";
        ctx.stroke();
      }
    }
  }

  // ------------------------------------------------------------------ prompts
  function setObject(id) {
    vs.object = Math.min(MAX_OBJECT, Math.max(1, Math.round(Number(id) || 1)));
    $("object").value = String(vs.object);
    $("object-swatch").style.background = css(vs.object);
  }

  function newObject() {
    if (!vs.active) return;
    let top = vs.object;
    for (const p of vs.prompts) top = Math.max(top, p.object);
    if (top >= MAX_OBJECT) { lib.status("the page prompts objects 1 to " + MAX_OBJECT, true); return; }
    setObject(top + 1);
    lib.status("object " + vs.object + ": click on it on any frame");
  }

  function addPrompt(item) {
    let replaced = null;
    if (item.kind === "box") { // one box per object and frame: a new one replaces it
      const i = vs.prompts.findIndex((p) => p.kind === "box" && p.frame === item.frame && p.object === item.object);
      if (i >= 0) replaced = { item: vs.prompts.splice(i, 1)[0], index: i };
    }
    vs.prompts.push(item);
    vs.history.push({ item: item, replaced: replaced });
    renderPrompts();
    drawMarks();
    const what = item.kind === "box" ? "box" : (item.label ? "positive point" : "negative point");
    lib.status("frame " + item.frame + ": " + what + " for object " + item.object + " — " + vs.prompts.length +
      " prompt(s); Track when ready");
  }

  function removePrompt(item) {
    const i = vs.prompts.indexOf(item);
    if (i < 0) return;
    vs.prompts.splice(i, 1);
    vs.history = vs.history.filter((h) => h.item !== item);
    renderPrompts();
    drawMarks();
  }

  function undo() {
    const last = vs.history.pop();
    if (!last) return;
    const i = vs.prompts.indexOf(last.item);
    if (i >= 0) vs.prompts.splice(i, 1);
    if (last.replaced) vs.prompts.splice(Math.min(last.replaced.index, vs.prompts.length), 0, last.replaced.item);
    renderPrompts();
    drawMarks();
    lib.status("undone — " + vs.prompts.length + " prompt(s)");
  }

  function clear() {
    vs.prompts = []; vs.history = []; vs.drag = null;
    renderPrompts();
    drawMarks();
    lib.status("cleared the prompts");
  }

  function renderPrompts() {
    const ul = $("prompts");
    ul.textContent = "";
    for (const p of vs.prompts) {
      const li = document.createElement("li");
      li.dataset.frame = String(p.frame);
      li.dataset.object = String(p.object);
      li.dataset.kind = p.kind;
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = css(p.object);
      const text = document.createElement("button");
      text.className = "prompt-text";
      text.title = "go to frame " + p.frame;
      text.textContent = "frame " + p.frame + " · object " + p.object + " · " +
        (p.kind === "box" ? "box" : (p.label ? "point +" : "point −"));
      text.addEventListener("click", () => showFrame(p.frame));
      const del = document.createElement("button");
      del.textContent = "×";
      del.title = "remove this prompt";
      del.className = "prompt-remove";
      del.addEventListener("click", () => removePrompt(p));
      li.append(sw, text, del);
      ul.appendChild(li);
    }
    $("prompt-count").textContent = String(vs.prompts.length);
    setObject(vs.object);
  }

  // The track request: one entry per (frame, object), its points and at most one box.
  function trackBody() {
    const groups = new Map();
    for (const p of vs.prompts) {
      const key = p.frame + ":" + p.object;
      let g = groups.get(key);
      if (!g) { g = { frame: p.frame, object: p.object }; groups.set(key, g); }
      if (p.kind === "box") g.box = p.box;
      else {
        (g.points = g.points || []).push([p.x, p.y]);
        (g.labels = g.labels || []).push(p.label);
      }
    }
    return { prompts: Array.from(groups.values()) };
  }

  // ------------------------------------------------------------------ pointer
  function onDown(ev) {
    if (!vs.active || !vs.video) return;
    ev.preventDefault();
    stopPlayback();
    vs.drag = { sx: ev.clientX, sy: ev.clientY, start: lib.toImage(ev), button: ev.button, box: null };
  }

  function onMove(ev) {
    const d = vs.drag;
    if (!d) return;
    if (Math.hypot(ev.clientX - d.sx, ev.clientY - d.sy) >= lib.DRAG_PX && d.button === 0) {
      const p = lib.toImage(ev);
      d.box = [Math.min(d.start[0], p[0]), Math.min(d.start[1], p[1]), Math.max(d.start[0], p[0]), Math.max(d.start[1], p[1])];
      drawMarks();
    }
  }

  function onUp() {
    const d = vs.drag;
    if (!d) return;
    vs.drag = null;
    const round = (v) => Math.round(v * 100) / 100;
    if (d.box && d.box[2] - d.box[0] >= 1 && d.box[3] - d.box[1] >= 1) {
      addPrompt({ frame: vs.frame, object: vs.object, kind: "box", box: d.box.map(round) });
      return;
    }
    const negative = d.button === 2 || $("negative").checked;
    addPrompt({ frame: vs.frame, object: vs.object, kind: "point", x: round(d.start[0]), y: round(d.start[1]),
      label: negative ? 0 : 1 });
  }

  // ------------------------------------------------------------------ tracking job
  const running = () => !!vs.job && FINISHED.indexOf(vs.job.status) < 0;

  function setJobButtons() {
    const done = !!vs.results;
    $("track").disabled = running();
    $("cancel").disabled = !running();
    $("play").disabled = !(done && vs.results.files["overlay.mp4"]);
    for (const b of document.querySelectorAll("#exports button")) b.disabled = !(done && vs.results.files[b.dataset.file]);
  }

  function showProgress(job) {
    const bar = $("track-progress");
    const p = job.progress || {};
    bar.hidden = false;
    bar.max = p.total || 1;
    bar.value = Math.min(p.done || 0, bar.max);
    if (job.status === "queued") lib.status("tracking: queued behind another job…");
    else if (job.status === "running") lib.status("tracking: " + (p.done || 0) + "/" + (p.total || "?") + " frames");
  }

  async function track() {
    if (!vs.active || !vs.video) { lib.status("open a video first", true); return; }
    if (running()) { lib.status("a tracking job is running; Cancel it first", true); return; }
    if (!vs.prompts.length) { lib.status("click on an object first (a point or a box, on any frame)", true); return; }
    const body = trackBody();
    let job;
    $("track").disabled = true;
    try {
      job = await lib.postJson("/v1/videos/" + vs.video.video_id + "/track", body);
    } catch (e) {
      $("track").disabled = false;
      lib.status("track failed: " + oneLine(e.message), true);
      return;
    }
    vs.sent = body;
    vs.job = job;
    vs.results = null;
    vs.masks = new Map();
    if (vs.overlayUrl) { URL.revokeObjectURL(vs.overlayUrl); vs.overlayUrl = null; }
    drawMask(null, vs.frame);
    setJobButtons();
    showProgress(job);
    poll(job.job_id);
  }

  async function poll(jobId) {
    for (;;) {
      if (!vs.job || vs.job.job_id !== jobId) return; // another video or job since
      let job;
      try {
        job = await lib.api("/v1/jobs/" + jobId);
      } catch (e) {
        if (!vs.job || vs.job.job_id !== jobId) return;
        lib.status("tracking job " + jobId + ": " + oneLine(e.message), true);
        vs.job = Object.assign({}, vs.job, { status: "failed", error: e.message });
        setJobButtons();
        return;
      }
      if (!vs.job || vs.job.job_id !== jobId) return;
      vs.job = job;
      if (FINISHED.indexOf(job.status) >= 0) { finished(job); return; }
      showProgress(job);
      await sleep(200);
    }
  }

  function finished(job) {
    const p = job.progress || {};
    $("track-progress").value = job.status === "done" ? $("track-progress").max : (p.done || 0);
    if (job.status === "done") {
      vs.results = job.results;
      setJobButtons();
      const n = job.results.objects.length;
      lib.status("tracked " + n + " object" + (n === 1 ? "" : "s") + " over " + job.results.frames + " frames in " +
        p.seconds + " s — scrub to see the masks, Play for the overlay" +
        (job.warnings && job.warnings.length ? " (warning: " + oneLine(job.warnings[0]) + ")" : ""));
      showFrame(vs.frame);
    } else if (job.status === "cancelled") {
      setJobButtons();
      lib.status("tracking cancelled after " + (p.done || 0) + "/" + (p.total || "?") + " frames");
    } else {
      setJobButtons();
      lib.status("tracking failed: " + oneLine(job.error || "unknown error"), true);
    }
  }

  async function cancel() {
    if (!running()) return;
    const jobId = vs.job.job_id;
    lib.status("cancelling…");
    try {
      const job = await lib.api("/v1/jobs/" + jobId, { method: "DELETE" });
      if (vs.job && vs.job.job_id === jobId && job.status === "cancelled") { vs.job = job; finished(job); }
    } catch (e) {
      lib.status("cancel failed: " + oneLine(e.message), true);
    }
  }

  // ------------------------------------------------------------------ playback and export
  function stopPlayback() {
    const player = $("player");
    if (player.hidden) return;
    player.pause();
    player.hidden = true;
    $("stage").classList.remove("playing");
    $("play").textContent = "Play";
  }

  async function play() {
    const player = $("player");
    if (!player.hidden) { stopPlayback(); showFrame(vs.frame); return; }
    if (!vs.results || !vs.results.files["overlay.mp4"]) { lib.status("track first; the overlay comes with the results", true); return; }
    const jobId = vs.job.job_id;
    try {
      if (!vs.overlayUrl) {
        lib.status("loading overlay.mp4…");
        const blob = await fetchBlob(vs.results.files["overlay.mp4"]);
        if (!vs.job || vs.job.job_id !== jobId) return;
        vs.overlayUrl = URL.createObjectURL(blob);
      }
    } catch (e) {
      lib.status("cannot load overlay.mp4: " + e.message, true);
      return;
    }
    player.style.width = $("canvases").style.width;
    if (player.src !== vs.overlayUrl) player.src = vs.overlayUrl;
    player.hidden = false;
    $("stage").classList.add("playing");
    $("play").textContent = "Frames";
    const fps = vs.video.fps || 25;
    const start = vs.frame >= lastFrame() ? 0 : vs.frame / fps;
    try { player.currentTime = start; } catch (e) { /* before metadata: starts at 0 */ }
    lib.status("playing the overlay — Frames (or a click on the scrubber) goes back to the frames");
    player.play().catch((e) => { if (!player.hidden) lib.status("the overlay does not play here: " + oneLine(e.message), true); });
  }

  function onPlayerTime() {
    const player = $("player");
    if (player.hidden || !vs.video) return;
    const n = Math.min(lastFrame(), Math.floor(player.currentTime * (vs.video.fps || 25) + 1e-3));
    vs.frame = n;
    $("frame").value = String(n);
    $("frame-number").value = String(n);
  }

  async function exportFile(name) {
    if (!vs.results || !vs.results.files[name]) return;
    try {
      const blob = await fetchBlob(vs.results.files[name]);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = vs.fileName.replace(/\.[^.]*$/, "") + "." + name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      lib.status("exported " + a.download);
    } catch (e) {
      lib.status("export of " + name + " failed: " + e.message, true);
    }
  }

  // ------------------------------------------------------------------ wiring
  function init() {
    const input = $("video-file");
    input.addEventListener("change", () => { const f = input.files[0]; input.value = ""; open(f); });
    $("marks").addEventListener("mousedown", onDown);
    window.addEventListener("mousemove", onMove);
    window.addEventListener("mouseup", onUp);
    $("frame").addEventListener("input", () => showFrame($("frame").value));
    $("frame-number").addEventListener("change", () => showFrame($("frame-number").value));
    $("frame-prev").addEventListener("click", () => showFrame(vs.frame - 1));
    $("frame-next").addEventListener("click", () => showFrame(vs.frame + 1));
    $("object").addEventListener("change", () => setObject($("object").value));
    $("new-object").addEventListener("click", newObject);
    $("track").addEventListener("click", track);
    $("cancel").addEventListener("click", cancel);
    $("play").addEventListener("click", play);
    const player = $("player");
    player.addEventListener("timeupdate", onPlayerTime);
    player.addEventListener("error", () => {
      if (!player.hidden) lib.status("this browser cannot play overlay.mp4 (H.264); export it instead", true);
    });
    for (const b of document.querySelectorAll("#exports button")) b.addEventListener("click", () => exportFile(b.dataset.file));
    document.addEventListener("keydown", (e) => {
      if (!vs.active || !e.target || ["INPUT", "TEXTAREA", "SELECT"].indexOf(e.target.tagName) >= 0) return;
      if (e.key === "ArrowLeft") { e.preventDefault(); showFrame(vs.frame - 1); }
      else if (e.key === "ArrowRight") { e.preventDefault(); showFrame(vs.frame + 1); }
    });
    window.addEventListener("resize", () => { if (vs.active) $("player").style.width = $("canvases").style.width; });
    setObject(1);
  }

  window.vfm.video = {
    get active() { return vs.active; },
    state: vs, accepts: accepts, open: open, leave: leave, newObject: newObject, undo: undo, clear: clear,
    showFrame: showFrame, trackBody: trackBody, palette: PALETTE,
  };
  init();
})();
