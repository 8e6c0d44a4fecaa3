// The EdgeSAM decoder in a Web Worker, on onnxruntime-web (WebGPU where available, else WASM).
//
// Messages in:  {type: "init", runtime, decoderUrl, headers}
//               {type: "embedding", buffer}        an .npy file (float32, 1x256x64x64)
//               {type: "decode", id, coords, labels}  coords in the 1024 frame, padding included
// Messages out: {type: "ready", threads, backend} | {type: "embedding-ready"}
//               {type: "decoded", id, scores, masks}  masks: 4 x 256 x 256 low-res logits
//               {type: "error", id, message}

let ort = null;
let session = null;
let embedding = null;

const EMBEDDING_SHAPE = [1, 256, 64, 64];

function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") throw new Error("not an .npy file");
  const view = new DataView(buffer);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLength));
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`.npy is not little-endian float32: ${header}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(".npy is in Fortran order");
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
  if (shape.join(",") !== EMBEDDING_SHAPE.join(",")) throw new Error(`embedding shape ${shape}`);
  const offset = start + headerLength;
  // slice(): a copy starting at offset 0, so the Float32Array is aligned whatever the header.
  return new Float32Array(buffer.slice(offset, offset + 4 * 256 * 64 * 64));
}

async function load(runtime, file, model, providers, threads) {
  ort = await import(`${runtime}${file}`);
  ort.env.wasm.wasmPaths = runtime;
  ort.env.wasm.numThreads = threads;
  return ort.InferenceSession.create(model, { executionProviders: providers });
}

async function init(message) {
  const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const response = await fetch(message.decoderUrl, { headers: message.headers });
  if (!response.ok) throw new Error(`decoder download failed: HTTP ${response.status}`);
  const model = new Uint8Array(await response.arrayBuffer());
  // WebGPU where the browser has a GPU adapter; the WASM build everywhere else, and
  // whenever the WebGPU one fails to start.
  let backend = "wasm";
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  if (adapter) {
    try {
      session = await load(message.runtime, "ort.webgpu.min.mjs", model, ["webgpu", "wasm"], threads);
      backend = "webgpu";
    } catch (err) {
      console.warn(`onnxruntime-web WebGPU did not start (${err}); using WASM`);
      session = null;
    }
  }
  if (!session) session = await load(message.runtime, "ort.wasm.min.mjs", model, ["wasm"], threads);
  postMessage({ type: "ready", threads, backend });
}

async function decode(message) {
  const n = message.labels.length;
  const feeds = {
    image_embeddings: embedding,
    point_coords: new ort.Tensor("float32", message.coords, [1, n, 2]),
    point_labels: new ort.Tensor("float32", message.labels, [1, n]),
  };
  const out = await session.run(feeds);
  const scores = Float32Array.from(out.scores.data);
  const masks = Float32Array.from(out.masks.data);
  postMessage({ type: "decoded", id: message.id, scores, masks }, [scores.buffer, masks.buffer]);
}

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "init") {
      await init(message);
    } else if (message.type === "embedding") {
      embedding = new ort.Tensor("float32", parseNpy(message.buffer), EMBEDDING_SHAPE);
      postMessage({ type: "embedding-ready" });
    } else if (message.type === "decode") {
      await decode(message);
    }
  } catch (err) {
    postMessage({ type: "error", id: message.id, stage: message.type, message: String(err && err.message || err) });
  }
};
