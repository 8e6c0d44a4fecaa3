"""``python -m benchmarks.cuda_shape_switch``: what a change of batch size costs on CUDA.

A "full" decoder (batch axis) that alternates between one prompt and a batch of
8 is timed as bare ``onnxruntime`` sessions under several CUDA and session
options: 8 single-prompt runs alone; the same after one batch-8 run per round
(the first single run after the batch reported apart); batch-8 runs alone.
Then the encoder (fixed shape) under the two cuDNN algorithm searches, and the
SDK's 8-box loop (``cuda_check``'s) under three of the options.

It found that onnxruntime's default ``cudnn_conv_algo_search`` (EXHAUSTIVE)
benchmarks cuDNN's algorithms again at every shape change, which is why edgesam
asks for HEURISTIC (docs/performance.md, CUDA). Needs ``onnxruntime-gpu``, the
reference folder (``EDGESAM_REFERENCE_DIR``) and a full decoder
(``--full-decoder``, default the benchmark's export cache).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from benchmarks._env import find_reference_dir
from benchmarks.cuda_check import _CACHED_FULL_DECODER, _box_loop, cuda_missing, emit

ROUNDS = 15
VARIANTS: dict[str, tuple[dict[str, str], dict[str, bool]]] = {
    "default": ({}, {}),
    "algo_heuristic": ({"cudnn_conv_algo_search": "HEURISTIC"}, {}),
    "algo_default": ({"cudnn_conv_algo_search": "DEFAULT"}, {}),
    "no_mem_pattern": ({}, {"enable_mem_pattern": False}),
    "arena_same_as_requested": ({"arena_extend_strategy": "kSameAsRequested"}, {}),
    "heuristic_no_mem_pattern": (
        {"cudnn_conv_algo_search": "HEURISTIC"},
        {"enable_mem_pattern": False},
    ),
}


def _ms(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e3


def _median(samples: list[float]) -> float:
    return round(float(np.median(samples)), 3)


def _feeds(rng: np.random.Generator, embedding: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    corners = np.sort(rng.uniform(0, 1000, (batch, 2, 2)), axis=1).astype(np.float32)
    return {
        "image_embeddings": embedding,
        "point_coords": corners,
        "point_labels": np.tile(np.array([[2.0, 3.0]], np.float32), (batch, 1)),
        "mask_input": np.zeros((batch, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros((batch,), np.float32),
    }


def _session(
    path: Path, provider_options: Mapping[str, str], session_options: Mapping[str, bool]
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    for key, value in session_options.items():
        setattr(options, key, value)
    return ort.InferenceSession(
        str(path),
        options,
        providers=[("CUDAExecutionProvider", dict(provider_options)), "CPUExecutionProvider"],
    )


def _switching(session: ort.InferenceSession, one: Any, eight: Any) -> dict[str, float]:
    for _ in range(3):
        session.run(None, one)
        session.run(None, eight)
    alone, first, others, mixed_batch, batch_alone = [], [], [], [], []
    for _ in range(ROUNDS):
        alone.append(sum(_ms(lambda: session.run(None, one)) for _ in range(8)))
    for _ in range(ROUNDS):
        mixed_batch.append(_ms(lambda: session.run(None, eight)))
        first.append(_ms(lambda: session.run(None, one)))
        others.append(sum(_ms(lambda: session.run(None, one)) for _ in range(7)))
    for _ in range(ROUNDS):
        batch_alone.append(_ms(lambda: session.run(None, eight)))
    return {
        "loop8_alone_ms": _median(alone),
        "batch8_alone_ms": _median(batch_alone),
        "mixed_batch8_ms": _median(mixed_batch),
        "mixed_first_single_after_batch_ms": _median(first),
        "mixed_other7_singles_ms": _median(others),
    }


def _encoder_ms(session: ort.InferenceSession, image: np.ndarray) -> float:
    for _ in range(3):
        session.run(None, {"image": image})
    return _median([_ms(lambda: session.run(None, {"image": image})) for _ in range(30)])


def main(argv: list[str] | None = None) -> int:
    from edgesam import SamPredictor

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_shape_switch")
    parser.add_argument("--full-decoder", type=Path, default=_CACHED_FULL_DECODER)
    parser.add_argument("--output", type=Path, help="write the report as JSON here too")
    args = parser.parse_args(argv)
    if cuda_missing():
        return 1
    reference = find_reference_dir(os.environ.get("EDGESAM_REFERENCE_DIR"))
    if reference is None or not args.full_decoder.is_file():
        print("needs the reference folder (EDGESAM_REFERENCE_DIR) and a full decoder")
        return 1
    encoder = reference / "onnx" / "edge_sam_random_encoder.onnx"
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((1, 256, 64, 64)).astype(np.float32)
    one, eight = _feeds(rng, embedding, 1), _feeds(rng, embedding, 8)
    report: dict[str, object] = {"onnxruntime": ort.__version__}
    for name, (provider_options, session_options) in VARIANTS.items():
        session = _session(args.full_decoder, provider_options, session_options)
        report[name] = _switching(session, one, eight)
        print(name, report[name], flush=True)
    image = rng.standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    for name in ("default", "algo_heuristic"):
        report[f"encoder_{name}_ms"] = _encoder_ms(_session(encoder, VARIANTS[name][0], {}), image)
        print(f"encoder_{name}_ms", report[f"encoder_{name}_ms"], flush=True)
    rgb = np.asarray(
        Image.open(reference / "images" / "truck.jpg").convert("RGB").resize((1800, 1200))
    )
    for name in ("default", "algo_heuristic", "no_mem_pattern"):
        provider_options, session_options = VARIANTS[name]
        options = ort.SessionOptions()
        for key, value in session_options.items():
            setattr(options, key, value)
        # edgesam adds HEURISTIC unless told otherwise: name onnxruntime's default outright.
        cuda = {**provider_options}
        cuda.setdefault("cudnn_conv_algo_search", "EXHAUSTIVE")
        predictor = SamPredictor.from_files(
            encoder, args.full_decoder, providers=[("cuda", cuda)], session_options=options
        )
        report[f"sdk_full_{name}"] = _box_loop(predictor, rgb)
        print(f"sdk_full_{name}", report[f"sdk_full_{name}"], flush=True)
    emit(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
