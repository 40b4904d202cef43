// vfm web page: click to segment. Plain ES2017, no build step; talks to the /v1 API.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PALETTE = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40], [128, 0, 0]];
  const CURRENT_COLOR = [255, 215, 0];
  const DRAG_PX = 6; // screen pixels a press must move to become a box
  // video.js (loaded after this file) registers the video mode here; while it is active the image
  // prompts are idle and undo / clear / Enter go to it
  const videoMode = () => (window.vfm && window.vfm.video && window.vfm.video.active) ? window.vfm.video : null;

  const state = {
    image: null,        // {id, width, height, fileName}
    bitmap: null,       // decoded image for drawing
    points: [],         // [[x, y, label]] of the current object
    box: null,          // [x0, y0, x1, y1] of the current object
    history: [],        // "point" | {box: previous} for undo
    current: null,      // mask object for the current prompt (from /segment)
    maskInputId: null,  // previous answer's logits handle, sent back to refine
    lowRes: null,       // previous in-browser answer's low-res logits, fed back to refine
    clickMs: null,      // time of the last in-browser decode
    masks: [],          // accepted mask objects
    nextColor: 0,
    seq: 0,             // request counter: stale answers are ignored
    requests: 0,        // finished /segment calls (tests wait on this)
    drag: null,
  };

  // ------------------------------------------------------------------ COCO RLE
  // Compressed COCO RLE string -> run lengths (port of pycocotools' rleFrString, with arithmetic
  // instead of 32-bit shifts so long runs stay exact).
  function rleCounts(s) {
    const counts = [];
    let p = 0;
    while (p < s.length) {
      let x = 0, k = 0, more = 1, c = 0;
      while (more) {
        c = s.charCodeAt(p) - 48;
        x += (c & 0x1f) * Math.pow(2, 5 * k);
        more = c & 0x20;
        p++; k++;
        if (!more && (c & 0x10)) x -= Math.pow(2, 5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    return counts;
  }

  // RLE ({size: [h, w], counts: string | number[]}) -> Uint8Array h*w in row-major order.
  function decodeRle(rle) {
    const h = rle.size[0], w = rle.size[1];
    const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
    const out = new Uint8Array(h * w);
    let idx = 0; // column-major position
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i];
      if (i % 2 === 1) {
        for (let j = idx; j < idx + n; j++) {
          const x = (j / h) | 0, y = j - x * h;
          out[y * w + x] = 1;
        }
      }
      idx += n;
    }
    if (idx !== h * w) throw new Error("RLE covers " + idx + " pixels, expected " + h * w);
    return out;
  }

  // Mask bitmap -> canvas with a translucent fill and an opaque outline (both inside the mask).
  function maskCanvas(bits, w, h, color) {
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    const ctx = c.getContext("2d");
    const img = ctx.createImageData(w, h);
    const d = img.data;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (!bits[i]) continue;
        const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
          !bits[i - 1] || !bits[i + 1] || !bits[i - w] || !bits[i + w];
        const o = i * 4;
        d[o] = color[0]; d[o + 1] = color[1]; d[o + 2] = color[2];
        d[o + 3] = edge ? 255 : 110;
      }
    }
    ctx.putImageData(img, 0, 0);
    return c;
  }

  function maskFromAnnotation(ann, color) {
    const bits = decodeRle(ann.segmentation);
    let area = 0;
    for (let i = 0; i < bits.length; i++) area += bits[i];
    const [h, w] = ann.segmentation.size;
    return {
      segmentation: ann.segmentation, bbox: ann.bbox, area: area, score: ann.score,
      name: ann.category_name || null, color: color, canvas: maskCanvas(bits, w, h, color),
      maskInputId: ann.mask_input_id || null,
    };
  }

  // A mask decoded in the browser (decoder.js): row-major bits -> the same object as from the server.
  function maskFromBits(bits, w, h, color, score) {
    let area = 0, x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!bits[y * w + x]) continue;
        area++;
        if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
    const bbox = area ? [x0, y0, x1 - x0 + 1, y1 - y0 + 1] : [0, 0, 0, 0];
    return {
      segmentation: window.vfm.decoder.encodeRle(bits, h, w), bbox: bbox, area: area, score: score,
      name: null, color: color, canvas: maskCanvas(bits, w, h, color), maskInputId: null, local: true,
    };
  }

  // ------------------------------------------------------------------ API
  function apiKey() { return localStorage.getItem("vfm.apiKey") || ""; }

  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({}, opts.headers || {});
    if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
    const resp = await fetch(path, Object.assign({}, opts, { headers: headers }));
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      let msg = (body && body.error) || resp.statusText;
      if (resp.status === 401) msg += " — enter the server's API key at the top right";
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  function postJson(path, body) {
    return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  function status(msg, isError) {
    const el = $("status");
    el.textContent = msg;
    el.classList.toggle("error", !!isError);
  }

  // ------------------------------------------------------------------ drawing
  function redraw() {
    const ov = $("overlay"), ctx = ov.getContext("2d");
    ctx.clearRect(0, 0, ov.width, ov.height);
    for (const m of state.masks) ctx.drawImage(m.canvas, 0, 0);
    if (state.current) ctx.drawImage(state.current.canvas, 0, 0);
    drawMarks();
    renderList();
  }

  function drawMarks() {
    const mk = $("marks"), ctx = mk.getContext("2d");
    ctx.clearRect(0, 0, mk.width, mk.height);
    if (!state.image) return;
    const s = Math.max(mk.width, mk.height) / 400; // marker size independent of image size
    const boxes = [];
    if (state.box) boxes.push(state.box);
    if (state.drag && state.drag.box) boxes.push(state.drag.box);
    for (const b of boxes) {
      ctx.lineWidth = Math.max(1, 1.5 * s);
      ctx.strokeStyle = "#ffd700";
      ctx.setLineDash([6 * s, 4 * s]);
      ctx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
      ctx.setLineDash([]);
    }
    for (const [x, y, label] of state.points) {
      ctx.beginPath();
      ctx.arc(x, y, Math.max(3, 5 * s), 0, 2 * Math.PI);
      ctx.fillStyle = label ? "#22c55e" : "#ef4444";
      ctx.fill();
      ctx.lineWidth = Math.max(1, 1.5 * s);
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
  }

  function renderList() {
    const ul = $("masks");
    ul.textContent = "";
    state.masks.forEach((m, i) => {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = "rgb(" + m.color.join(",") + ")";
      const name = document.createElement("input");
      name.className = "mask-name";
      name.value = m.name || "";
      name.placeholder = "class name";
      name.addEventListener("change", () => { m.name = name.value.trim() || null; });
      const sc = document.createElement("span");
      sc.className = "score";
      sc.textContent = m.score.toFixed(2);
      const del = document.createElement("button");
      del.textContent = "×";
      del.title = "delete this mask";
      del.addEventListener("click", () => { state.masks.splice(i, 1); redraw(); });
      li.append(sw, name, sc, del);
      ul.appendChild(li);
    });
    $("count").textContent = String(state.masks.length);
  }

  // ------------------------------------------------------------------ image
  async function openFile(file) {
    if (!file) return;
    status("uploading " + file.name + " and computing its embedding…");
    let bitmap = null;
    try {
      bitmap = await loadBitmap(file);
    } catch (e) {
      bitmap = null; // e.g. TIFF: show the server's decoded pixels instead
    }
    const form = new FormData();
    form.append("file", file, file.name);
    let info;
    try {
      info = await api("/v1/images", { method: "POST", body: form });
      if (!bitmap) bitmap = await serverBitmap(info.image_id);
    } catch (e) {
      status("upload failed: " + e.message, true);
      return;
    }
    if (videoMode()) videoMode().leave();
    state.image = { id: info.image_id, width: info.width, height: info.height, fileName: file.name };
    state.bitmap = bitmap;
    state.masks = []; state.nextColor = 0;
    resetPrompt();
    for (const id of ["image", "overlay", "marks"]) {
      $(id).width = info.width; $(id).height = info.height;
    }
    // the server applies EXIF orientation; browsers do too for <img>, so both agree on the size
    $("image").getContext("2d").drawImage(bitmap, 0, 0, info.width, info.height);
    $("stage").classList.remove("empty");
    fitCanvas();
    redraw();
    status(file.name + ": " + info.width + "×" + info.height + " — click on an object");
    if (window.vfm.decoder) {  // fetch the decoder and this image's embedding now, so the first click is local
      window.vfm.decoder.load().then((s) => s && window.vfm.decoder.embedding(info.image_id)).catch(() => null);
    }
  }

  // Show the image (or video frame) as large as the stage allows (canvas pixels stay image pixels).
  function fitCanvas() {
    if (!state.image && !videoMode()) return;
    const w = state.image ? state.image.width : $("image").width;
    const h = state.image ? state.image.height : $("image").height;
    const stage = $("stage");
    const availW = stage.clientWidth - 24, availH = stage.clientHeight - 24;
    const scale = Math.max(0.05, Math.min(availW / w, availH / h));
    $("canvases").style.width = Math.floor(w * scale) + "px";
  }

  // Forget the open image (the video mode takes the canvases over).
  function closeImage() {
    state.seq++;
    state.image = null; state.bitmap = null; state.masks = []; state.nextColor = 0; state.drag = null;
    $("answer-side").hidden = true;
    resetPrompt();
    renderList();
  }

  async function serverBitmap(imageId) {
    const headers = apiKey() ? { Authorization: "Bearer " + apiKey() } : {};
    const resp = await fetch("/v1/images/" + imageId + "/image.png", { headers: headers });
    if (!resp.ok) throw new Error("cannot fetch the decoded image (" + resp.status + ")");
    return loadBitmap(await resp.blob());
  }

  function loadBitmap(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file);
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("not an image the browser can show"));
      img.src = url;
    });
  }

  // ------------------------------------------------------------------ prompts
  function resetPrompt() {
    state.points = []; state.box = null; state.history = [];
    state.current = null; state.maskInputId = null; state.lowRes = null;
  }

  // Points (no box) are decoded in the browser when the server handed out its decoder.
  async function localDecoder() {
    if (state.box || !state.points.length || !window.vfm.decoder) return null;
    return window.vfm.decoder.load();
  }

  async function runSegment(refine) {
    if (!state.image) return;
    if (!state.points.length && !state.box) { state.current = null; redraw(); return; }
    const body = { multimask: false };
    if (state.points.length) {
      body.points = state.points.map((p) => [p[0], p[1]]);
      body.labels = state.points.map((p) => p[2]);
    }
    if (state.box) body.box = state.box;
    if (refine && state.maskInputId) body.mask_input = state.maskInputId;
    const seq = ++state.seq;
    drawMarks();
    try {
      if (await localDecoder()) {
        const image = state.image;
        const r = await window.vfm.decoder.decode(image.id, state.points, refine ? state.lowRes : null);
        if (seq !== state.seq) return;
        state.current = maskFromBits(r.bits, image.width, image.height, CURRENT_COLOR, r.score);
        state.lowRes = r.low;
        state.clickMs = r.ms;
        status("mask: " + state.current.area + " px, score " + r.score.toFixed(3) + " — decoded in the browser in " +
          r.ms.toFixed(0) + " ms — Enter/Add mask to keep it");
        redraw();
        return;
      }
      const doc = await postJson("/v1/images/" + state.image.id + "/segment", body);
      if (seq !== state.seq) return; // a newer click is on its way
      const ann = doc.annotations[0];
      state.current = maskFromAnnotation(ann, CURRENT_COLOR);
      state.maskInputId = ann.mask_input_id || null;
      status("mask: " + state.current.area + " px, score " + ann.score.toFixed(3) + " — Enter/Add mask to keep it");
    } catch (e) {
      if (seq !== state.seq) return;
      if (e.status === 404) status("the server forgot this image (restart or cache eviction); open it again", true);
      else status("segment failed: " + e.message, true);
    } finally {
      if (seq === state.seq) state.requests++;
    }
    redraw();
  }

  function accept() {
    if (videoMode()) { videoMode().newObject(); return; }
    if (!state.current) return;
    const color = PALETTE[state.nextColor++ % PALETTE.length];
    const ann = state.current;
    const m = maskFromAnnotation({ segmentation: ann.segmentation, bbox: ann.bbox, score: ann.score }, color);
    m.name = $("class-name").value.trim() || null;
    state.masks.push(m);
    resetPrompt();
    redraw();
    status("kept mask " + state.masks.length + (m.name ? " (" + m.name + ")" : ""));
  }

  function undo() {
    if (videoMode()) { videoMode().undo(); return; }
    const last = state.history.pop();
    if (last === undefined) return;
    if (last === "point") state.points.pop();
    else state.box = last.box;
    state.maskInputId = null;
    runSegment(false);
  }

  function clearPrompt() {
    if (videoMode()) { videoMode().clear(); return; }
    state.seq++; resetPrompt(); redraw(); status("cleared");
  }

  function toImage(ev) {
    const mk = $("marks"), r = mk.getBoundingClientRect();
    const x = (ev.clientX - r.left) * mk.width / r.width;
    const y = (ev.clientY - r.top) * mk.height / r.height;
    return [Math.min(Math.max(x, 0), mk.width - 0.01), Math.min(Math.max(y, 0), mk.height - 0.01)];
  }

  function onDown(ev) {
    if (!state.image) return;
    ev.preventDefault();
    state.drag = { sx: ev.clientX, sy: ev.clientY, start: toImage(ev), button: ev.button, box: null };
  }

  function onMove(ev) {
    const d = state.drag;
    if (!d) return;
    if (Math.hypot(ev.clientX - d.sx, ev.clientY - d.sy) >= DRAG_PX && d.button === 0) {
      const p = toImage(ev);
      d.box = [Math.min(d.start[0], p[0]), Math.min(d.start[1], p[1]), Math.max(d.start[0], p[0]), Math.max(d.start[1], p[1])];
      drawMarks();
    }
  }

  function onUp(ev) {
    const d = state.drag;
    if (!d) return;
    state.drag = null;
    if (d.box && d.box[2] - d.box[0] >= 1 && d.box[3] - d.box[1] >= 1) {
      state.history.push({ box: state.box });
      state.box = d.box.map((v) => Math.round(v * 100) / 100);
      state.maskInputId = null;
      runSegment(false);
      return;
    }
    const negative = d.button === 2 || $("negative").checked;
    const [x, y] = d.start;
    state.points.push([Math.round(x * 100) / 100, Math.round(y * 100) / 100, negative ? 0 : 1]);
    state.history.push("point");
    runSegment(state.points.length > 1);
  }

  // ------------------------------------------------------------------ text prompt
  async function ground(ev) {
    ev.preventDefault();
    const text = $("text").value.trim();
    if (!state.image || !text) { status(state.image ? "type class names first" : "open an image first", true); return; }
    status("finding " + text + "…");
    try {
      const doc = await postJson("/v1/images/" + state.image.id + "/ground", { classes: text });
      for (const ann of doc.annotations) {
        const m = maskFromAnnotation(ann, PALETTE[state.nextColor++ % PALETTE.length]);
        m.name = ann.category_name || text;
        state.masks.push(m);
      }
      redraw();
      status(doc.annotations.length + " mask(s) for “" + text + "”");
    } catch (e) {
      status("text prompt failed: " + e.message, true);
    }
  }

  // ------------------------------------------------------------------ ask / caption (vfm serve --vlm / --captioner)
  async function askServer(kind) {
    if (!state.image) { status("open an image first", true); return; }
    const body = { image_id: state.image.id, ground: $("ask-ground").checked };
    if (kind === "ask") {
      const q = $("question").value.trim();
      if (!q) { status("type a question, e.g. what is on the table?", true); return; }
      body.question = q;
    }
    status(kind === "ask" ? "asking…" : "captioning…");
    const started = performance.now();
    try {
      const doc = await postJson("/v1/" + kind, body);
      $("answer-side").hidden = false;
      $("answer").textContent = doc.answer;
      $("answer-info").textContent = doc.tokens + " tokens · " + ((performance.now() - started) / 1000).toFixed(1) + " s";
      for (const ann of doc.annotations || []) {
        const m = maskFromAnnotation(ann, PALETTE[state.nextColor++ % PALETTE.length]);
        m.name = ann.category_name;
        state.masks.push(m);
      }
      if (doc.annotations) redraw();
      status((kind === "ask" ? "answered" : "captioned") + " by " + doc.model +
        (doc.annotations ? " · " + doc.annotations.length + " phrase(s) shown" : ""));
    } catch (e) {
      status(kind + " failed: " + e.message, true);
    }
  }

  // ------------------------------------------------------------------ export
  function cocoDocument() {
    const all = state.masks.slice();
    if (state.current) all.push(Object.assign({}, state.current, { name: $("class-name").value.trim() || null }));
    const names = [];
    for (const m of all) { const n = m.name || "object"; if (names.indexOf(n) < 0) names.push(n); }
    return {
      info: { description: "exported from the vfm web page", date_created: new Date().toISOString() },
      images: [{ id: 1, file_name: state.image.fileName, width: state.image.width, height: state.image.height }],
      categories: names.map((n, i) => ({ id: i + 1, name: n })),
      annotations: all.map((m, i) => ({
        id: i + 1, image_id: 1, category_id: names.indexOf(m.name || "object") + 1,
        segmentation: { size: m.segmentation.size, counts: m.segmentation.counts },
        area: m.area, bbox: m.bbox, iscrowd: 0, score: m.score,
      })),
    };
  }

  function exportCoco() {
    if (videoMode()) { status("a video's tracks are exported with the buttons of the video bar (tracks.jsonl, masks.zip…)", true); return; }
    if (!state.image) { status("open an image first", true); return; }
    const doc = cocoDocument();
    const blob = new Blob([JSON.stringify(doc)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = state.image.fileName.replace(/\.[^.]*$/, "") + ".coco.json";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    status("exported " + doc.annotations.length + " mask(s)");
  }

  // ------------------------------------------------------------------ search (vfm serve --db)
  async function indexBlob(imageId) {
    const headers = {};
    if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
    const resp = await fetch("/v1/index/images/" + imageId, { headers: headers });
    if (!resp.ok) throw new Error("the index's image " + imageId + " cannot be read (" + resp.status + ")");
    return resp.blob();
  }

  function showHits(result) {
    const box = $("hits");
    for (const img of box.querySelectorAll("img")) URL.revokeObjectURL(img.src);
    box.textContent = "";
    state.hits = result.hits;
    $("results").hidden = false;
    $("results-info").textContent = result.hits.length + " of " + result.index.vectors + " · " +
      (result.timing_ms.embed + result.timing_ms.search).toFixed(0) + " ms";
    result.hits.forEach((hit) => {
      const fig = document.createElement("figure");
      fig.className = "hit";
      fig.dataset.imageId = hit.image_id;
      fig.title = hit.file_name + " (score " + hit.score.toFixed(3) + ")";
      const img = document.createElement("img");
      img.alt = hit.file_name;
      const cap = document.createElement("figcaption");
      cap.textContent = "#" + hit.rank + " " + hit.score.toFixed(3) + " " + (hit.category ? hit.category + " · " : "") + hit.file_name;
      fig.append(img, cap);
      box.append(fig);
      indexBlob(hit.image_id).then((b) => { img.src = URL.createObjectURL(b); }).catch(() => { img.alt = "unreadable"; });
      fig.addEventListener("click", () => openHit(hit));
    });
  }

  async function runSearch(body) {
    status("searching…");
    try {
      const result = await postJson("/v1/search", Object.assign({ k: 24 }, body));
      showHits(result);
      status(result.hits.length + " hits for " + (body.text ? "'" + body.text + "'" : "the open image"));
    } catch (e) {
      status("search failed: " + e.message, true);
    }
  }

  // A hit opens in the segmentation view: its bytes are uploaded like an opened file.
  async function openHit(hit) {
    try {
      const blob = await indexBlob(hit.image_id);
      const name = hit.file_name.split("/").pop();
      await openFile(new File([blob], name, { type: blob.type || "image/png" }));
    } catch (e) {
      status("cannot open " + hit.file_name + ": " + e.message, true);
    }
  }

  // ------------------------------------------------------------------ wiring
  function init() {
    $("apikey").value = apiKey();
    $("apikey").addEventListener("change", () => {
      const v = $("apikey").value.trim();
      if (v) localStorage.setItem("vfm.apiKey", v); else localStorage.removeItem("vfm.apiKey");
      status(v ? "API key saved in this browser" : "API key removed");
    });
    $("file").addEventListener("change", () => openFile($("file").files[0]));
    const openAny = (file) => (window.vfm.video && window.vfm.video.accepts(file) ? window.vfm.video.open(file) : openFile(file));
    const stage = $("stage");
    stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("drag"); });
    stage.addEventListener("dragleave", () => stage.classList.remove("drag"));
    stage.addEventListener("drop", (e) => {
      e.preventDefault();
      stage.classList.remove("drag");
      if (e.dataTransfer && e.dataTransfer.files.length) openAny(e.dataTransfer.files[0]);
    });
    const mk = $("marks");
    mk.addEventListener("mousedown", onDown);
    window.addEventListener("mousemove", onMove);
    window.addEventListener("mouseup", onUp);
    mk.addEventListener("contextmenu", (e) => e.preventDefault());
    $("accept").addEventListener("click", accept);
    $("undo").addEventListener("click", undo);
    $("clear").addEventListener("click", clearPrompt);
    $("export").addEventListener("click", exportCoco);
    $("text-form").addEventListener("submit", ground);
    $("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("search").value.trim();
      if (!text) { status("type what to search for, e.g. a red car", true); return; }
      runSearch({ text: text });
    });
    $("search-image").addEventListener("click", () => {
      if (!state.image) { status("open an image first, then search for images like it", true); return; }
      runSearch({ image_id: state.image.id });
    });
    $("ask-form").addEventListener("submit", (e) => { e.preventDefault(); askServer("ask"); });
    $("caption-go").addEventListener("click", () => askServer("caption"));
    $("results-close").addEventListener("click", () => { $("results").hidden = true; });
    window.addEventListener("resize", fitCanvas);
    document.addEventListener("keydown", (e) => {
      if (e.target && e.target.tagName === "INPUT") return;
      if (e.key === "Enter") accept();
      else if (e.key === "Escape") clearPrompt();
      else if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
    });
  }

  window.vfm = {
    state: state, decodeRle: decodeRle, rleCounts: rleCounts, cocoDocument: cocoDocument,
    // shared with video.js
    lib: { api: api, postJson: postJson, apiKey: apiKey, status: status, toImage: toImage, fitCanvas: fitCanvas,
      closeImage: closeImage, DRAG_PX: DRAG_PX },
  };
  init();
})();
