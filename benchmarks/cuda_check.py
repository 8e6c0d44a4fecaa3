"""``python -m benchmarks.cuda_check``: does EdgeSAM run on CUDA, match the CPU, and keep
the embedding on the device?

Prints onnxruntime's providers, what the SDK's sessions really run on, the
embedding and mask agreement between CUDA and CPU on the reference image and
prompts, and decoder latency with the embedding resident on the GPU (IO
binding) versus copied from the host at every call. Run it on a machine with
an NVIDIA GPU and ``onnxruntime-gpu``; elsewhere it says CUDA is unavailable
and exits 1.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from benchmarks._env import find_reference_dir

POINTS = ([[500, 375]], [[1100, 600]], [[300, 800]])
BOX = [100, 300, 1500, 1000]


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    for _ in range(3):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1000)


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 1.0


def main() -> int:
    from edgesam import SamPredictor

    print("onnxruntime", ort.__version__, ort.get_available_providers())
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print("CUDAExecutionProvider is not available: install onnxruntime-gpu on a CUDA machine")
        return 1
    reference = find_reference_dir(None)
    if reference is None:
        print("reference files not found (EDGESAM_REFERENCE_DIR)")
        return 1
    encoder = reference / "onnx" / "edge_sam_random_encoder.onnx"
    decoder = reference / "onnx" / "edge_sam_random_decoder.onnx"
    rgb = np.asarray(Image.open(reference / "images" / "truck.jpg").convert("RGB"))
    cpu = SamPredictor.from_files(encoder, decoder, providers=["cpu"])
    gpu = SamPredictor.from_files(encoder, decoder, providers=["cuda"])
    report: dict[str, object] = {
        "providers": gpu.providers,
        "resident_device": gpu.model.resident_device,
    }
    cpu.set_image(rgb)
    gpu.set_image(rgb)
    report["embedding_max_abs_diff"] = float(
        np.abs(np.asarray(cpu.get_image_embedding()) - np.asarray(gpu.get_image_embedding())).max()
    )
    ious, logit_diffs, score_diffs = [], [], []
    prompts: list[dict[str, object]] = [
        {"point_coords": point, "point_labels": [1]} for point in POINTS
    ]
    prompts.append({"box": BOX})
    for prompt in prompts:
        for multimask in (True, False):
            want = cpu.predict(multimask_output=multimask, **prompt)  # type: ignore[arg-type]
            have = gpu.predict(multimask_output=multimask, **prompt)  # type: ignore[arg-type]
            ious.extend(_iou(a, b) for a, b in zip(want[0], have[0], strict=True))
            score_diffs.append(float(np.abs(want[1] - have[1]).max()))
            logit_diffs.append(float(np.abs(want[2] - have[2]).max()))
    report["mask_iou_min"] = min(ious)
    report["low_res_logits_max_abs_diff"] = max(logit_diffs)
    report["score_max_abs_diff"] = max(score_diffs)

    point, label = POINTS[0], [1]
    report["set_image_ms"] = _median_ms(lambda: gpu.set_image(rgb), 20)
    report["predict_low_res_ms_resident"] = _median_ms(
        lambda: gpu.predict_low_res(point, label), 100
    )
    report["predict_ms_resident"] = _median_ms(lambda: gpu.predict(point, label), 100)
    resident = gpu._resident
    gpu._resident = None  # the embedding now goes host -> device at every decoder call
    report["predict_low_res_ms_from_host"] = _median_ms(
        lambda: gpu.predict_low_res(point, label), 100
    )
    report["predict_ms_from_host"] = _median_ms(lambda: gpu.predict(point, label), 100)
    gpu._resident = resident
    print(json.dumps(report, indent=2))
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if output is not None:
        output.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
