"""``python -m benchmarks.cuda_check``: does EdgeSAM run on CUDA and match the CPU?

Prints onnxruntime's providers, what the SDK's sessions really run on, the
embedding and mask agreement between CUDA and CPU on the reference image and
prompts, and set_image / predict latency on the GPU.

With a "full" decoder (batch axis and mask input; ``--full-decoder``, default
the benchmark's export cache) it also times 8 boxes one ``predict`` at a time
against the official decoder, split into decoder runs and upsampling, alone and
interleaved with ``predict_batch`` (which feeds the same session batch 8), and
profiles the full decoder's nodes.

Run it on a machine with an NVIDIA GPU and ``onnxruntime-gpu``; elsewhere it
says CUDA is unavailable and exits 1.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

from benchmarks._env import find_reference_dir
from benchmarks._latency import BOX, BOXES
from benchmarks._timing import interleaved

POINTS = ([[500, 375]], [[1100, 600]], [[300, 800]])
CPU_BOX = [100, 300, 1500, 1000]
_CACHED_FULL_DECODER = (
    Path(__file__).parent / "results" / "models" / "edge_sam_random_full_decoder.onnx"
)


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


def _agreement(cpu: Any, gpu: Any, rgb: np.ndarray) -> dict[str, object]:
    """CUDA vs CPU: embedding, then masks, logits and scores for clicks and a box."""
    cpu.set_image(rgb)
    gpu.set_image(rgb)
    report: dict[str, object] = {
        "embedding_max_abs_diff": float(
            np.abs(
                np.asarray(cpu.get_image_embedding()) - np.asarray(gpu.get_image_embedding())
            ).max()
        )
    }
    ious: list[float] = []
    logit_diffs: list[float] = []
    score_diffs: list[float] = []
    prompts: list[dict[str, object]] = [
        {"point_coords": point, "point_labels": [1]} for point in POINTS
    ]
    prompts.append({"box": CPU_BOX})
    for prompt in prompts:
        for multimask in (True, False):
            want = cpu.predict(multimask_output=multimask, **prompt)
            have = gpu.predict(multimask_output=multimask, **prompt)
            ious.extend(_iou(a, b) for a, b in zip(want[0], have[0], strict=True))
            score_diffs.append(float(np.abs(want[1] - have[1]).max()))
            logit_diffs.append(float(np.abs(want[2] - have[2]).max()))
    report["mask_iou_min"] = min(ious)
    report["low_res_logits_max_abs_diff"] = max(logit_diffs)
    report["score_max_abs_diff"] = max(score_diffs)
    return report


def _timings(gpu: Any, rgb: np.ndarray) -> dict[str, float]:
    """Median set_image and predict latencies on the GPU."""
    point, label = POINTS[0], [1]
    report = {"set_image_ms": _median_ms(lambda: gpu.set_image(rgb), 20)}
    cases = {
        "predict_low_res": lambda: gpu.predict_low_res(point, label),
        "predict": lambda: gpu.predict(point, label),
    }
    for name, call in cases.items():
        report[f"{name}_ms"] = _median_ms(call, 100)
    return report


def _subnormals(arrays: list[np.ndarray]) -> int:
    tiny = np.finfo(np.float32).tiny
    return sum(int(np.count_nonzero((array != 0) & (np.abs(array) < tiny))) for array in arrays)


def _box_loop(predictor: Any, rgb: np.ndarray, repeat: int = 15) -> dict[str, object]:
    """8 boxes one predict at a time: decoder runs and upsampling, then next to predict_batch."""
    from edgesam._postprocess import upsample_masks

    predictor.set_image(rgb)
    embedding = predictor.get_image_embedding()
    original, input_size = embedding.original_size, embedding.input_size
    low_res = [predictor.predict_low_res(box=box, multimask_output=False)[1] for box in BOXES]
    alone = interleaved(
        {
            "predict_loop": lambda: [
                predictor.predict(box=box, multimask_output=False) for box in BOXES
            ],
            "low_res_loop": lambda: [
                predictor.predict_low_res(box=box, multimask_output=False) for box in BOXES
            ],
            "upsample_loop": lambda: [
                upsample_masks(logits, original, input_size) for logits in low_res
            ],
            "predict_one_box": lambda: predictor.predict(box=BOX, multimask_output=False),
        },
        repeat=repeat,
        warmup=2,
    )
    mixed = interleaved(
        {
            "predict_loop": lambda: [
                predictor.predict(box=box, multimask_output=False) for box in BOXES
            ],
            "predict_batch": lambda: predictor.predict_batch(boxes=BOXES, multimask_output=False),
        },
        repeat=repeat,
        warmup=2,
    )
    report: dict[str, object] = {f"{name}_ms": stats.median * 1000 for name, stats in alone.items()}
    report.update({f"with_batch_{name}_ms": stats.median * 1000 for name, stats in mixed.items()})
    report["subnormal_logits"] = _subnormals(low_res)
    return report


def _profile_full_decoder(
    encoder: Path, full_decoder: Path, rgb: np.ndarray, folder: Path, provider: str = "cuda"
) -> dict[str, object]:
    """onnxruntime's profile of the full decoder over the 8-box loop: time per op type."""
    from edgesam import SamPredictor

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "full_decoder_profile")
    predictor = SamPredictor.from_files(
        encoder, full_decoder, providers=[provider], session_options=options
    )
    predictor.set_image(rgb)
    for _ in range(5):
        for box in BOXES:
            predictor.predict_low_res(box=box, multimask_output=False)
    profile = Path(predictor.model._decoder._session.end_profiling())
    per_op: dict[str, float] = defaultdict(float)
    per_provider: dict[str, float] = defaultdict(float)
    runs = 0
    for event in json.loads(profile.read_text()):
        args = event.get("args", {})
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_op[args.get("op_name", "?")] += event.get("dur", 0) / 1000
            per_provider[args.get("provider", "?")] += event.get("dur", 0) / 1000
        elif event.get("name") == "model_run":
            runs += 1
    top = sorted(per_op.items(), key=lambda item: -item[1])[:12]
    return {
        "profile_file": profile.name,
        "decoder_runs": runs,
        "kernel_ms_per_run_by_op": {name: round(ms / max(runs, 1), 4) for name, ms in top},
        "kernel_ms_per_run_by_provider": {
            name: round(ms / max(runs, 1), 4) for name, ms in per_provider.items()
        },
    }


def cuda_missing() -> bool:
    """Say so and return True when this onnxruntime has no CUDA provider."""
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return False
    print("CUDAExecutionProvider is not available: install onnxruntime-gpu on a CUDA machine")
    return True


def emit(report: dict[str, object], output: Path | None) -> None:
    """Print the report as JSON, and write it to ``output`` too when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if output is not None:
        output.write_text(text)


def main(argv: list[str] | None = None) -> int:
    from edgesam import SamPredictor

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_check")
    parser.add_argument("--output", type=Path, help="write the report as JSON here too")
    parser.add_argument(
        "--full-decoder",
        type=Path,
        default=_CACHED_FULL_DECODER,
        help="a full decoder (edgesam export --variants full) for the 8-box loop; "
        "default: the benchmark's export cache, skipped if absent",
    )
    args = parser.parse_args(argv)
    print("onnxruntime", ort.__version__, ort.get_available_providers())
    if cuda_missing():
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
        "cudnn_conv_algo_search": gpu.model._decoder._session.get_provider_options()
        .get("CUDAExecutionProvider", {})
        .get("cudnn_conv_algo_search"),
    }
    report.update(_agreement(cpu, gpu, rgb))
    report.update(_timings(gpu, rgb))
    report["box_loop_official"] = _box_loop(gpu, rgb)
    if args.full_decoder.is_file():
        full = SamPredictor.from_files(encoder, args.full_decoder, providers=["cuda"])
        report["box_loop_full"] = _box_loop(full, rgb)
        folder = args.output.parent if args.output is not None else Path.cwd()
        report["full_decoder_profile"] = _profile_full_decoder(
            encoder, args.full_decoder, rgb, folder
        )
    else:
        report["box_loop_full"] = f"skipped: no full decoder at {args.full_decoder}"
    emit(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
