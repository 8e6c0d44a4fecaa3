// The edgesam page: upload an image to /v1/embed, decode clicks in a Web Worker with
// onnxruntime-web (falling back to POST /v1/decode), draw the mask, export it.
//
// The browser does what edgesam's SamPredictor does: points scaled into the 1024
// frame, a padding point (0, 0, -1) when there is no box, the 256x256 logits upsampled
// to the image (bilinear, half-pixel centres, as torch's align_corners=False: 256 ->
// 1024, crop the padding, -> H x W), thresholded at 0. Clicks alone ask for all four
// masks with stability scores and show the most stable (as the EdgeSAM demo does); a
// box shows the single-mask output.

const runtime = new URL(document.querySelector('meta[name="edgesam-ort-runtime"]').content, location.href).href;
const $ = (id) => document.getElementById(id);
const statusLine = $("status");
const imageCanvas = $("image");
const overlay = $("overlay");

const state = {
  imageId: null, width: 0, height: 0, inputSize: null,
  points: [], box: null, history: [],
  candidates: [], scores: [], selected: -1,
  decoder: "starting", backend: null, threads: 0, decodeCount: 0, pending: 0, error: null,
};
// For tests and the console.
window.edgesam = { state, maskBase64, coords: toFrame };

let apiKey = sessionStorage.getItem("edgesam-api-key");
const headers = () => (apiKey ? { Authorization: `Bearer ${apiKey}` } : {});

async function api(path, options = {}) {
  for (;;) {
    const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...headers() } });
    if (response.status === 401) {
      const key = prompt("This server needs an API key:");
      if (!key) throw new Error("an API key is needed");
      apiKey = key;
      sessionStorage.setItem("edgesam-api-key", key);
      continue;
    }
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }
}

function setStatus(text) { statusLine.textContent = text; }

// -- the decoder worker ------------------------------------------------------------------

const worker = new Worker("/static/worker.js", { type: "module" });
const waiting = new Map();
let nextId = 0;
let workerReady = null;
let embeddingReady = null;

function workerCall(type, payload, transfer = []) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject, type });
    worker.postMessage({ type, id, ...payload }, transfer);
  });
}

worker.onmessage = (event) => {
  const message = event.data;
  if (message.type === "ready") { workerReadyResolve(message); return; }
  if (message.type === "embedding-ready") { embeddingResolve(); return; }
  if (message.type === "error" && message.stage === "init") { workerReadyReject(new Error(message.message)); return; }
  if (message.type === "error" && message.stage === "embedding") { embeddingReject(new Error(message.message)); return; }
  const call = waiting.get(message.id);
  if (!call) return;
  waiting.delete(message.id);
  if (message.type === "error") call.reject(new Error(message.message));
  else call.resolve(message);
};

let workerReadyResolve, workerReadyReject, embeddingResolve, embeddingReject;
workerReady = new Promise((resolve, reject) => { workerReadyResolve = resolve; workerReadyReject = reject; });
// /v1/health first: it asks for the API key when the server needs one, before the
// worker downloads the decoder with it.
api("/v1/health").then(
  () => worker.postMessage({ type: "init", runtime, decoderUrl: "/v1/models/decoder.onnx", headers: headers() }),
  (err) => workerReadyReject(err),
);
workerReady.then((message) => {
  state.decoder = "browser";
  state.threads = message.threads;
  state.backend = message.backend;
  const where = message.backend === "webgpu" ? "WebGPU" : `WASM, ${message.threads} thread${message.threads > 1 ? "s" : ""}`;
  setStatus(`decoder in the browser (onnxruntime-web, ${where})`);
}, (err) => {
  state.decoder = "server";
  state.error = String(err.message || err);
  setStatus(`decoding on the server (onnxruntime-web did not load: ${state.error})`);
});

// -- images --------------------------------------------------------------------------------

async function openImage(file) {
  setStatus(`embedding ${file.name}…`);
  const bitmap = await createImageBitmap(file);
  imageCanvas.width = overlay.width = bitmap.width;
  imageCanvas.height = overlay.height = bitmap.height;
  imageCanvas.getContext("2d").drawImage(bitmap, 0, 0);
  $("drop").hidden = true;
  $("stage").hidden = false;
  Object.assign(state, { imageId: null, points: [], box: null, history: [], candidates: [], scores: [], selected: -1 });
  draw();
  const response = await api("/v1/embed", {
    method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
  });
  const info = await response.json();
  [state.height, state.width] = info.original_size;
  state.inputSize = info.input_size;
  if (state.width !== bitmap.width || state.height !== bitmap.height) {
    console.warn(`server sees ${state.width}x${state.height}, browser ${bitmap.width}x${bitmap.height}`);
  }
  embeddingReady = null;
  if (state.decoder !== "server") {
    try {
      await workerReady;
      const npy = await (await api(`/v1/embeddings/${info.image_id}`)).arrayBuffer();
      embeddingReady = new Promise((resolve, reject) => { embeddingResolve = resolve; embeddingReject = reject; });
      worker.postMessage({ type: "embedding", buffer: npy }, [npy]);
      await embeddingReady;
    } catch (err) {
      state.decoder = "server";
      state.error = String(err.message || err);
    }
  }
  state.imageId = info.image_id;
  setStatus(`${file.name}: ${state.width}x${state.height}, decoder ${state.decoder === "browser" ? "in the browser" : "on the server"}. Click the object.`);
}

$("file").addEventListener("change", (event) => { if (event.target.files[0]) openImage(event.target.files[0]).catch(fail); });
const drop = $("drop");
for (const target of [drop, document.body]) {
  target.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("hover"); });
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("hover");
    const file = event.dataTransfer.files[0];
    if (file) openImage(file).catch(fail);
  });
}

function fail(err) { state.error = String(err.message || err); setStatus(`error: ${state.error}`); }

// -- prompts -------------------------------------------------------------------------------

function toImage(event) {
  const rect = overlay.getBoundingClientRect();
  return [(event.clientX - rect.left) * (overlay.width / rect.width), (event.clientY - rect.top) * (overlay.height / rect.height)];
}

let dragStart = null;
overlay.addEventListener("contextmenu", (event) => event.preventDefault());
overlay.addEventListener("pointerdown", (event) => { if (state.imageId) dragStart = { at: toImage(event), client: [event.clientX, event.clientY] }; });
overlay.addEventListener("pointerup", (event) => {
  if (!dragStart) return;
  const start = dragStart;
  dragStart = null;
  const end = toImage(event);
  const moved = Math.hypot(event.clientX - start.client[0], event.clientY - start.client[1]);
  pushHistory();
  if (moved > 5) {
    state.box = [Math.min(start.at[0], end[0]), Math.min(start.at[1], end[1]), Math.max(start.at[0], end[0]), Math.max(start.at[1], end[1])];
  } else {
    const label = event.shiftKey || event.button === 2 ? 0 : 1;
    state.points.push([end[0], end[1], label]);
  }
  update();
});

function pushHistory() {
  state.history.push({ points: state.points.map((p) => [...p]), box: state.box && [...state.box] });
}

$("undo").addEventListener("click", () => {
  const previous = state.history.pop();
  if (!previous) return;
  state.points = previous.points;
  state.box = previous.box;
  update();
});
$("clear").addEventListener("click", () => {
  pushHistory();
  state.points = [];
  state.box = null;
  update();
});

// Points (and box corners) in the 1024 frame, as the decoder takes them.
function toFrame() {
  const [newH, newW] = state.inputSize;
  const sx = newW / state.width, sy = newH / state.height;
  const coords = [], labels = [];
  for (const [x, y, label] of state.points) { coords.push(x * sx, y * sy); labels.push(label); }
  if (state.box) {
    const [x0, y0, x1, y1] = state.box;
    coords.push(x0 * sx, y0 * sy, x1 * sx, y1 * sy);
    labels.push(2, 3);
  } else {
    coords.push(0, 0);
    labels.push(-1);
  }
  return { coords: Float32Array.from(coords), labels: Float32Array.from(labels) };
}

async function update() {
  $("undo").disabled = state.history.length === 0;
  $("clear").disabled = state.points.length === 0 && !state.box;
  if (state.points.length === 0 && !state.box) {
    state.candidates = [];
    state.scores = [];
    state.selected = -1;
    draw();
    return;
  }
  const ticket = ++state.pending;
  try {
    const result = state.decoder === "browser" ? await decodeInBrowser() : await decodeOnServer();
    if (ticket !== state.pending) return; // a newer prompt is on its way
    state.candidates = result.masks;
    state.scores = result.scores;
    state.selected = result.scores.reduce((best, score, i) => (score > result.scores[best] ? i : best), 0);
    state.decodeCount++;
    draw();
  } catch (err) {
    fail(err);
  }
}

async function decodeInBrowser() {
  const { coords, labels } = toFrame();
  const out = await workerCall("decode", { coords, labels });
  const [newH, newW] = state.inputSize;
  const plan = upsamplingPlan(state.height, state.width, newH, newW);
  const indices = state.box ? [0] : [0, 1, 2, 3];
  const masks = [], scores = [];
  for (const index of indices) {
    const logits = out.masks.subarray(index * 65536, (index + 1) * 65536);
    masks.push(upsample(logits, plan));
    scores.push(state.box ? out.scores[index] : stability(logits));
  }
  return { masks, scores };
}

async function decodeOnServer() {
  const body = {
    image_id: state.imageId,
    points: state.points.length ? state.points.map(([x, y]) => [x, y]) : null,
    labels: state.points.length ? state.points.map((p) => p[2]) : null,
    box: state.box,
    num_multimask_outputs: state.box ? 1 : 4,
    use_stability_score: !state.box,
    mask_format: "png",
  };
  const response = await api("/v1/decode", {
    method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" },
  });
  const answer = await response.json();
  const masks = [];
  for (const record of answer.masks) masks.push(await pngToMask(record.segmentation));
  return { masks, scores: answer.masks.map((record) => record.score) };
}

async function pngToMask(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const mask = new Uint8Array(bitmap.width * bitmap.height);
  for (let i = 0; i < mask.length; i++) mask[i] = rgba[4 * i] > 127 ? 1 : 0;
  return mask;
}

// -- post-processing, as edgesam's _postprocess does it -----------------------------------

function stability(logits) {
  let high = 0, low = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > 1) high++;
    if (logits[i] > -1) low++;
  }
  return low ? Math.fround(high / low) : 0;
}

// torch's bilinear taps (align_corners=False, no antialiasing), rounded as float32.
function taps(inSize, outSize) {
  const scale = Math.fround(inSize / outSize);
  const lower = new Int32Array(outSize), upper = new Int32Array(outSize), weight = new Float64Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = Math.max(Math.fround(scale * (i + 0.5) - 0.5), 0);
    lower[i] = Math.min(Math.floor(src), inSize - 1);
    upper[i] = Math.min(lower[i] + 1, inSize - 1);
    weight[i] = Math.fround(src - lower[i]);
  }
  return { lower, upper, weight };
}

// Per axis, 256 -> 1024 -> crop to `cropped` -> `out` as up to four (index, weight) taps
// into the 256 low-res values for each output index.
function axisPlan(out, cropped) {
  const first = taps(256, 1024), second = taps(cropped, out);
  const index = new Int32Array(out * 4), weight = new Float64Array(out * 4);
  for (let i = 0; i < out; i++) {
    const parts = [[second.lower[i], 1 - second.weight[i]], [second.upper[i], second.weight[i]]];
    let k = 0;
    for (const [row, w] of parts) {
      index[i * 4 + k] = first.lower[row]; weight[i * 4 + k++] = w * (1 - first.weight[row]);
      index[i * 4 + k] = first.upper[row]; weight[i * 4 + k++] = w * first.weight[row];
    }
  }
  return { index, weight };
}

let cachedPlan = null;
function upsamplingPlan(height, width, newH, newW) {
  const key = `${height},${width},${newH},${newW}`;
  if (!cachedPlan || cachedPlan.key !== key) {
    cachedPlan = { key, height, width, rows: axisPlan(height, newH), cols: axisPlan(width, newW) };
  }
  return cachedPlan;
}

function upsample(logits, plan) {
  const { height, width, rows, cols } = plan;
  const tmp = new Float64Array(height * 256); // rows resampled, columns still low-res
  for (let y = 0; y < height; y++) {
    const row = tmp.subarray(y * 256, (y + 1) * 256);
    for (let k = 0; k < 4; k++) {
      const w = rows.weight[y * 4 + k];
      if (w === 0) continue;
      const source = rows.index[y * 4 + k] * 256;
      for (let x = 0; x < 256; x++) row[x] += w * logits[source + x];
    }
  }
  const mask = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const base = y * 256;
    for (let x = 0; x < width; x++) {
      const j = x * 4;
      const value = cols.weight[j] * tmp[base + cols.index[j]] + cols.weight[j + 1] * tmp[base + cols.index[j + 1]]
        + cols.weight[j + 2] * tmp[base + cols.index[j + 2]] + cols.weight[j + 3] * tmp[base + cols.index[j + 3]];
      mask[y * width + x] = value > 0 ? 1 : 0;
    }
  }
  return mask;
}

// -- drawing and the candidate picker ------------------------------------------------------

function draw() {
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  const mask = state.candidates[state.selected];
  if (mask) {
    const pixels = context.createImageData(overlay.width, overlay.height);
    for (let i = 0; i < mask.length; i++) {
      if (mask[i]) { pixels.data[4 * i] = 255; pixels.data[4 * i + 1] = 40; pixels.data[4 * i + 2] = 140; pixels.data[4 * i + 3] = 140; }
    }
    context.putImageData(pixels, 0, 0);
  }
  const radius = Math.max(4, Math.round(Math.max(overlay.width, overlay.height) / 150));
  for (const [x, y, label] of state.points) {
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fillStyle = label ? "#22c55e" : "#ef4444";
    context.fill();
    context.lineWidth = Math.max(1, radius / 3);
    context.strokeStyle = "#fff";
    context.stroke();
  }
  if (state.box) {
    const [x0, y0, x1, y1] = state.box;
    context.lineWidth = Math.max(2, radius / 2);
    context.strokeStyle = "#facc15";
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  const picker = $("candidates");
  picker.replaceChildren(...state.candidates.map((_, i) => {
    const button = document.createElement("button");
    button.textContent = `${i + 1} (${state.scores[i].toFixed(2)})`;
    if (i === state.selected) button.classList.add("selected");
    button.addEventListener("click", () => { state.selected = i; draw(); });
    return button;
  }));
  $("download-png").disabled = $("download-rle").disabled = !mask;
}

// -- downloads -----------------------------------------------------------------------------

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

$("download-png").addEventListener("click", () => {
  const mask = state.candidates[state.selected];
  const canvas = document.createElement("canvas");
  canvas.width = state.width;
  canvas.height = state.height;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(state.width, state.height);
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i] ? 255 : 0;
    pixels.data[4 * i] = pixels.data[4 * i + 1] = pixels.data[4 * i + 2] = v;
    pixels.data[4 * i + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  canvas.toBlob((blob) => save(blob, "mask.png"), "image/png");
});

$("download-rle").addEventListener("click", () => {
  const mask = state.candidates[state.selected];
  const record = { size: [state.height, state.width], counts: cocoCounts(mask, state.height, state.width) };
  save(new Blob([JSON.stringify(record)], { type: "application/json" }), "mask.rle.json");
});

// COCO compressed RLE of a row-major mask (runs in column-major order, starting with 0s).
function cocoCounts(mask, height, width) {
  const counts = [];
  let current = 0, run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const value = mask[y * width + x];
      if (value !== current) { counts.push(run); run = 0; current = value; }
      run++;
    }
  }
  counts.push(run);
  let text = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    for (let more = true; more;) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      text += String.fromCharCode(c + 48);
    }
  }
  return text;
}

// Base64 of candidate `index` (default: the shown one), one byte per pixel, row-major.
function maskBase64(index = state.selected) {
  const mask = state.candidates[index];
  let binary = "";
  for (let i = 0; i < mask.length; i += 0x8000) binary += String.fromCharCode(...mask.subarray(i, i + 0x8000));
  return btoa(binary);
}
window.edgesam.cocoCounts = cocoCounts;
