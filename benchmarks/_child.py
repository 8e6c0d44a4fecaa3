"""Work done in a fresh process: cold start, peak RSS, and RSS growth.

``python -m benchmarks._child TASK --encoder E --decoder D --image I [...]``
prints one JSON object as its last line. The clock starts before anything but
the standard library is imported, so ``import edgesam`` (or ``import
onnxruntime``) is inside the measured time; the parent also times the whole
process from spawn to exit.

Tasks
-----
cold-sdk
    ``import edgesam``, sessions, ``set_image``, one ``predict`` (one point,
    multimask, masks at the original size).
cold-bare
    The same with onnxruntime, numpy and Pillow only (:mod:`benchmarks._bare`):
    preprocessing, two default sessions, an encoder and a decoder run.
growth
    ``set_image`` on ``--calls`` different images (crops, flips and resizes of
    the reference images); RSS after every call. ``--arena`` picks the memory
    configuration (see :func:`session_options_for`); ``bare`` runs the bare
    preprocessing and a default encoder session instead of the SDK.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["ARENA_MODES", "main"]

ARENA_MODES = (
    "edgesam",
    "fixed-mmap",
    "bare",
    "ort-defaults",
    "arena-no-pattern",
    "no-arena",
    "same-as-requested",
)
POINT = [[500.0, 375.0]]


def _rss_bytes() -> int:
    """Resident set size now (Linux ``/proc/self/statm``; else the peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _peak_rss_bytes()


def _cold_record(
    imported: float, sessions: float, encoded: float, done: float, mask_shape: tuple[int, ...]
) -> dict[str, object]:
    """One cold-start run: clock readings since process start, split into phases."""
    return {
        "import_s": imported,
        "sessions_s": sessions - imported,
        "set_image_s": encoded - sessions,
        "predict_s": done - encoded,
        "total_s": done,
        "mask_shape": list(mask_shape),
        "peak_rss_bytes": _peak_rss_bytes(),
        "rss_bytes": _rss_bytes(),
    }


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process.

    ``VmHWM`` from ``/proc/self/status`` where there is one: ``ru_maxrss`` is
    not usable on Linux because ``execve`` carries the spawning process's peak
    into it (the parent's, when ``subprocess`` uses ``vfork``).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _elapsed() -> float:
    return time.perf_counter() - _T0


def cold_sdk(args: argparse.Namespace) -> dict[str, Any]:
    import edgesam

    imported = _elapsed()
    predictor = edgesam.SamPredictor.from_files(
        args.encoder, args.decoder, providers=[args.provider]
    )
    sessions = _elapsed()
    import numpy as np
    from PIL import Image

    with Image.open(args.image) as image:
        rgb = np.asarray(image.convert("RGB"))
    predictor.set_image(rgb)
    encoded = _elapsed()
    masks, _, _ = predictor.predict(point_coords=POINT, point_labels=[1], multimask_output=True)
    done = _elapsed()
    return _cold_record(imported, sessions, encoded, done, masks.shape)


def cold_bare(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    from benchmarks._bare import bare_preprocess, bare_prompt

    imported = _elapsed()
    providers = [args.provider_name]
    encoder = ort.InferenceSession(str(args.encoder), providers=providers)
    decoder = ort.InferenceSession(str(args.decoder), providers=providers)
    sessions = _elapsed()
    with Image.open(args.image) as image:
        rgb = np.asarray(image.convert("RGB"))
    image_input, input_size = bare_preprocess(rgb)
    (embedding,) = encoder.run(None, {"image": image_input})
    encoded = _elapsed()
    coords, labels = bare_prompt(
        np.array(POINT, dtype=np.float32),
        np.array([1.0], dtype=np.float32),
        None,
        rgb.shape[:2],
        input_size,
    )
    feeds = {"image_embeddings": embedding, "point_coords": coords, "point_labels": labels}
    if any(node.name == "mask_input" for node in decoder.get_inputs()):
        feeds["mask_input"] = np.zeros((1, 1, 256, 256), dtype=np.float32)
        feeds["has_mask_input"] = np.zeros((1,), dtype=np.float32)
    _, low_res = decoder.run(None, feeds)
    masks = low_res[0, 1:] > 0.0
    done = _elapsed()
    return _cold_record(imported, sessions, encoded, done, masks.shape)


def varied_images(sources: list[Path], count: int, seed: int = 0) -> Iterator[Any]:
    """``count`` different HxWx3 uint8 images: random crops, flips and resizes of ``sources``.

    Deterministic for a given seed; sizes range from about a tenth to 1.5x the
    sources', in both orientations, so every call sees a new input size.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    bases = []
    for path in sources:
        with Image.open(path) as image:
            bases.append(np.asarray(image.convert("RGB")))
    for index in range(count):
        base = bases[index % len(bases)]
        height, width = base.shape[:2]
        crop_h = max(8, int(height * rng.uniform(0.3, 1.0)))
        crop_w = max(8, int(width * rng.uniform(0.3, 1.0)))
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        image = base[top : top + crop_h, left : left + crop_w]
        if rng.random() < 0.5:
            image = image[:, ::-1]
        if rng.random() < 0.5:
            image = image[::-1]
        if rng.random() < 0.3:
            image = image.transpose(1, 0, 2)
        factor = rng.uniform(0.5, 1.5)
        size = (max(8, int(image.shape[1] * factor)), max(8, int(image.shape[0] * factor)))
        yield np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size))


def session_options_for(mode: str) -> Any:
    """onnxruntime ``SessionOptions`` for one of :data:`ARENA_MODES` (None: edgesam's own).

    ``fixed-mmap`` runs as ``edgesam`` (the parent sets the malloc environment).
    ``ort-defaults``: CPU arena (extend strategy kNextPowerOfTwo) and memory
    pattern on, as a plain ``SessionOptions()``. ``arena-no-pattern``: arena on,
    memory pattern off. ``no-arena``: both off. ``same-as-requested``: memory
    pattern off, and a process-wide CPU arena registered in the onnxruntime
    environment with extend strategy kSameAsRequested (the CPU provider takes no
    arena options of its own). All but ``ort-defaults`` start from edgesam's
    defaults (graph optimisation, threads).
    """
    import onnxruntime as ort

    from edgesam._session import default_session_options

    if mode in {"edgesam", "fixed-mmap"}:
        return None
    if mode in {"ort-defaults", "bare"}:
        return ort.SessionOptions()
    options = default_session_options()
    options.enable_mem_pattern = False
    options.enable_cpu_mem_arena = mode != "no-arena"
    if mode == "same-as-requested":
        memory = ort.OrtMemoryInfo(
            "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
        )
        ort.create_and_register_allocator(memory, ort.OrtArenaCfg({"arena_extend_strategy": 1}))
        options.add_session_config_entry("session.use_env_allocators", "1")
    elif mode not in {"arena-no-pattern", "no-arena"}:
        raise ValueError(f"unknown arena mode {mode!r}: one of {ARENA_MODES}")
    return options


def _bare_encoder(args: argparse.Namespace) -> Any:
    import onnxruntime as ort

    from benchmarks._bare import bare_preprocess

    session = ort.InferenceSession(str(args.encoder), providers=[args.provider_name])

    def set_image(image: Any) -> Any:
        image_input, _ = bare_preprocess(image)
        return session.run(None, {"image": image_input})

    return set_image


def growth(args: argparse.Namespace) -> dict[str, Any]:
    if args.arena == "bare":
        set_image = _bare_encoder(args)
    else:
        import edgesam

        predictor = edgesam.SamPredictor.from_files(
            args.encoder,
            args.decoder,
            providers=[args.provider],
            session_options=session_options_for(args.arena),
        )
        set_image = predictor.set_image
    loaded = _rss_bytes()
    sources = [Path(path) for path in args.sources]
    rss: list[int] = []
    times: list[float] = []
    for image in varied_images(sources, args.calls):
        start = time.perf_counter()
        set_image(image)
        times.append(time.perf_counter() - start)
        rss.append(_rss_bytes())
    return {
        "arena": args.arena,
        "calls": args.calls,
        "rss_after_load_bytes": loaded,
        "rss_bytes": rss,
        "set_image_s": times,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._child")
    parser.add_argument("task", choices=["cold-sdk", "cold-bare", "growth"])
    parser.add_argument("--encoder", type=Path, required=True)
    parser.add_argument("--decoder", type=Path, required=True)
    parser.add_argument("--image", type=Path)
    parser.add_argument("--sources", nargs="*", default=[])
    parser.add_argument("--provider", default="cpu")
    parser.add_argument("--provider-name", default="CPUExecutionProvider")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--arena", choices=ARENA_MODES, default="edgesam")
    args = parser.parse_args(argv)
    tasks = {"cold-sdk": cold_sdk, "cold-bare": cold_bare, "growth": growth}
    result = tasks[args.task](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
