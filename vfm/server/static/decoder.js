// vfm web page: clicks decoded in the browser. The server gives the page the prompt decoder once
// (GET /v1/models/segmenter/decoder.onnx, kept by the browser's cache) and each image's embedding
// once (GET /v1/images/{id}/embedding, fp16); onnxruntime-web (WebAssembly, /static/ort/) runs the
// decoder, so a click costs no request. Where the server has no exported decoder (another model
// family, or vfm serve --no-browser-decoding) load() resolves to null and the page asks the server.
"use strict";

(function () {
  const dec = { session: null, loading: null, reason: null, embeddings: new Map(), decodes: 0 };

  function headers() {
    const key = localStorage.getItem("vfm.apiKey") || "";
    return key ? { Authorization: "Bearer " + key } : {};
  }

  async function get(path) {
    const resp = await fetch(path, { headers: headers() });
    if (!resp.ok) {
      let msg = resp.statusText;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return resp;
  }

  // The decoder session, created once; null when this server decodes clicks itself.
  function load() {
    if (!dec.loading) {
      dec.loading = (async () => {
        try {
          if (typeof ort === "undefined") throw new Error("onnxruntime-web did not load");
          ort.env.wasm.wasmPaths = "/static/ort/";
          ort.env.wasm.numThreads = 1; // no cross-origin isolation needed; the decoder is small
          const bytes = new Uint8Array(await (await get("/v1/models/segmenter/decoder.onnx")).arrayBuffer());
          dec.session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
        } catch (e) {
          dec.session = null;
          dec.reason = e.message;
          if (e.status === 401) dec.loading = null; // no API key yet: try again at the next click
        }
        return dec.session;
      })();
    }
    return dec.loading;
  }

  // IEEE half -> float, through a table of the 65,536 values.
  let HALF = null;
  function halfTable() {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      t[h] = e === 0 ? s * Math.pow(2, -14) * (f / 1024)
        : e === 31 ? (f ? NaN : s * Infinity) : s * Math.pow(2, e - 15) * (1 + f / 1024);
    }
    return t;
  }

  // The image's embedding (fetched once per image id) and its frame.
  function embedding(imageId) {
    if (!dec.embeddings.has(imageId)) {
      const p = (async () => {
        const resp = await get("/v1/images/" + imageId + "/embedding?dtype=fp16");
        const shape = resp.headers.get("X-Embedding-Shape").split(",").map(Number);
        const input = resp.headers.get("X-Input-Size").split(",").map(Number);
        const original = resp.headers.get("X-Original-Size").split(",").map(Number);
        const half = new Uint16Array(await resp.arrayBuffer());
        if (!HALF) HALF = halfTable();
        const data = new Float32Array(half.length);
        for (let i = 0; i < half.length; i++) data[i] = HALF[half[i]];
        return { tensor: new ort.Tensor("float32", data, shape), input: input, original: original,
          lowRes: shape[2] * 4 };
      })();
      p.catch(() => dec.embeddings.delete(imageId));
      dec.embeddings.set(imageId, p);
    }
    return dec.embeddings.get(imageId);
  }

  // points: [[x, y, label]] in image pixels; previous: the last answer's low-res logits (refine) or null.
  // -> {bits (Uint8Array h*w row-major), low (Float32Array), score, ms}
  async function decode(imageId, points, previous) {
    const started = performance.now();
    const emb = await embedding(imageId);
    const [h, w] = emb.original, [ih, iw] = emb.input, n = points.length, L = emb.lowRes;
    const coords = new Float32Array(2 * n), labels = new Float32Array(n);
    points.forEach((p, i) => { coords[2 * i] = p[0] * iw / w; coords[2 * i + 1] = p[1] * ih / h; labels[i] = p[2]; });
    const feeds = {
      image_embeddings: emb.tensor,
      point_coords: new ort.Tensor("float32", coords, [1, n, 2]),
      point_labels: new ort.Tensor("float32", labels, [1, n]),
      mask_input: new ort.Tensor("float32", previous || new Float32Array(L * L), [1, 1, L, L]),
      has_mask_input: new ort.Tensor("float32", new Float32Array([previous ? 1 : 0]), [1]),
      input_size: new ort.Tensor("int64", BigInt64Array.from([BigInt(ih), BigInt(iw)]), [2]),
      orig_size: new ort.Tensor("int64", BigInt64Array.from([BigInt(h), BigInt(w)]), [2]),
    };
    const out = await dec.session.run(feeds);
    const logits = out.masks.data, bits = new Uint8Array(h * w);
    for (let i = 0; i < bits.length; i++) bits[i] = logits[i] > 0 ? 1 : 0;
    dec.decodes++;
    return { bits: bits, low: new Float32Array(out.low_res_masks.data), score: out.iou.data[0],
      ms: performance.now() - started };
  }

  // Row-major bits -> COCO compressed RLE (column-major runs; port of pycocotools' rleToString).
  function encodeRle(bits, h, w) {
    const counts = [];
    let last = 0, run = 0;
    for (let x = 0; x < w; x++) {
      for (let y = 0; y < h; y++) {
        const v = bits[y * w + x];
        if (v !== last) { counts.push(run); run = 0; last = v; }
        run++;
      }
    }
    counts.push(run);
    let s = "";
    for (let i = 0; i < counts.length; i++) {
      let x = counts[i];
      if (i > 2) x -= counts[i - 2];
      let more = 1;
      while (more) {
        let c = x & 0x1f;
        x >>= 5;
        more = c & 0x10 ? x !== -1 : x !== 0;
        if (more) c |= 0x20;
        s += String.fromCharCode(c + 48);
      }
    }
    return { size: [h, w], counts: s };
  }

  window.vfm = window.vfm || {};
  window.vfm.decoder = { load: load, embedding: embedding, decode: decode, encodeRle: encodeRle, state: dec };
})();
