"""In-process latency: ``set_image`` split, ``predict`` variants, ``everything``.

Each SDK call is timed round-robin with its bare onnxruntime counterpart on the
same model file and the same input (see :mod:`benchmarks._bare`).
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks._bare import BareSam, bare_preprocess, bare_prompt
from benchmarks._report import Row, Target
from benchmarks._timing import Stats, interleaved, paired_ratio, stats_of
from benchmarks._variants import ModelVariant

__all__ = [
    "ENCODER_GFLOP",
    "POINT",
    "Settings",
    "everything_rows",
    "load_rgb",
    "predict_rows",
    "set_image_rows",
]

ENCODER_GFLOP = 22.1  # per 1024x1024 image (EdgeSAM paper)
POINT = np.array([[500.0, 375.0]], dtype=np.float32)  # the truck's window (SAM notebook)
BOX = np.array([425.0, 600.0, 700.0, 875.0], dtype=np.float32)  # the truck's wheel
BOXES = np.array(
    [
        [75, 275, 1725, 850],
        [425, 600, 700, 875],
        [1375, 550, 1650, 800],
        [1240, 675, 1400, 750],
        [50, 50, 600, 400],
        [800, 100, 1700, 500],
        [100, 800, 500, 1150],
        [900, 850, 1750, 1180],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class Settings:
    """Repetitions per measurement (after ``warmup`` untimed rounds)."""

    encoder_repeat: int
    decoder_repeat: int
    everything_repeat: int
    warmup: int = 1


def load_rgb(path: Path) -> NDArray[np.uint8]:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _ms(stats: Stats) -> float:
    return stats.median * 1e3


def _row(
    section: str,
    name: str,
    variant: ModelVariant,
    provider: str,
    sdk: Stats,
    bare: Stats | None,
    target: Target | None = None,
    note: str = "",
) -> Row:
    return Row(
        section=section,
        name=name,
        variant=variant.name,
        provider=provider,
        unit="ms",
        value=_ms(sdk),
        baseline=_ms(bare) if bare is not None else None,
        ratio=paired_ratio(sdk, bare) if bare is not None else None,
        target=target,
        note=note,
        details={"sdk": sdk.as_dict(), "bare": bare.as_dict() if bare else None},
    )


class _Split:
    """Times ``preprocess_image`` and ``EdgeSam._encode`` as ``set_image`` calls them.

    While active, ``edgesam._predictor.preprocess_image`` and the model's
    ``_encode`` are wrapped with timers (about a microsecond each), so one
    ``set_image`` call yields its own preprocessing and encoder times, and the
    rest is the SDK's overhead. Restored on exit.
    """

    def __init__(self, predictor: Any) -> None:
        import edgesam._predictor as predictor_module

        self._module: Any = predictor_module
        self._model = predictor.model
        self.preprocess: list[float] = []
        self.encode: list[float] = []

    def __enter__(self) -> _Split:
        original_preprocess = self._module.preprocess_image
        original_encode = self._model._encode

        def preprocess(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original_preprocess(*args, **kwargs)
            finally:
                self.preprocess.append(time.perf_counter() - start)

        def encode(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original_encode(*args, **kwargs)
            finally:
                self.encode.append(time.perf_counter() - start)

        self._original = original_preprocess
        self._module.preprocess_image = preprocess
        self._model._encode = encode
        return self

    def __exit__(self, *exc: object) -> None:
        self._module.preprocess_image = self._original
        del self._model._encode  # the instance attribute; the class method shows again

    def clear(self) -> None:
        self.preprocess.clear()
        self.encode.clear()


def set_image_rows(
    predictor: Any,
    bare: BareSam,
    rgb: NDArray[np.uint8],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
) -> list[Row]:
    """set_image in total and in parts, against the bare encoder run on the same input."""
    from edgesam._transforms import preprocess_image

    image_input, _ = preprocess_image(rgb)
    with _Split(predictor) as split:
        cases: dict[str, Callable[[], object]] = {
            "set_image": lambda: predictor.set_image(rgb),
            "bare_run": lambda: bare.encode(image_input),
            "bare_preprocess": lambda: bare_preprocess(rgb),
        }
        for _ in range(settings.warmup):
            for function in cases.values():
                function()
        split.clear()
        timings = interleaved(cases, repeat=settings.encoder_repeat, warmup=0)
        preprocess, encode = stats_of(split.preprocess), stats_of(split.encode)
    total = timings["set_image"]
    overhead = stats_of(
        [
            whole - pre - run
            for whole, pre, run in zip(
                total.samples, preprocess.samples, encode.samples, strict=True
            )
        ]
    )
    bare_run = timings["bare_run"]
    size = f"{rgb.shape[0]}x{rgb.shape[1]}"
    rows = [
        _row(
            "set_image",
            f"set_image {size} (all in)",
            variant,
            provider,
            total,
            bare_run,
            Target("<=", 1.10),
            "vs bare InferenceSession.run of the encoder, same input",
        ),
        _row(
            "set_image",
            "  preprocessing (inside set_image)",
            variant,
            provider,
            preprocess,
            timings["bare_preprocess"],
            note="vs naive numpy/Pillow preprocessing (bare column)",
        ),
        _row(
            "set_image",
            "  encoder run (inside set_image)",
            variant,
            provider,
            encode,
            bare_run,
            note="edgesam session options vs onnxruntime defaults",
        ),
        Row(
            "set_image",
            "  overhead (rest of set_image)",
            variant=variant.name,
            provider=provider,
            unit="ms",
            value=overhead.median * 1e3,
            note="image checks, embedding bookkeeping, heap trim (per call)",
            details={"sdk": overhead.as_dict()},
        ),
    ]
    gflops = [ENCODER_GFLOP / seconds for seconds in encode.samples]
    bare_gflops = [ENCODER_GFLOP / seconds for seconds in bare_run.samples]
    rows.append(
        Row(
            "compute",
            "encoder achieved",
            variant=variant.name,
            provider=provider,
            unit="GFLOP/s",
            value=stats_of(gflops).median,
            baseline=stats_of(bare_gflops).median,
            note=f"{ENCODER_GFLOP} GFLOPs per image / median encoder run",
        )
    )
    return rows


def _mask_input_available(model: Any) -> tuple[bool, str]:
    if getattr(model, "native_mask_input", False):
        return True, "native mask input"
    if importlib.util.find_spec("edgesam._mask_prompt") is None:
        return False, "edgesam._mask_prompt does not exist yet"
    if getattr(model, "_checkpoint", None) is None:
        return False, "no checkpoint for the mask prompt"
    return True, "mask conditioning from the .pth (official decoder has no mask input)"


def predict_rows(
    predictor: Any,
    bare: BareSam,
    rgb: NDArray[np.uint8],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
) -> list[Row]:
    """predict: one point, one box, low-res only, 8 boxes loop vs batch, mask input."""
    from edgesam._postprocess import upsample_masks

    predictor.set_image(rgb)
    embedding = predictor.get_image_embedding()
    array = np.asarray(embedding.array, dtype=np.float32)
    original, input_size = embedding.original_size, embedding.input_size
    labels = np.array([1.0], dtype=np.float32)
    point_coords, point_labels = bare_prompt(POINT, labels, None, original, input_size)
    box_coords, box_labels = bare_prompt(None, None, BOX, original, input_size)
    _, _, low_res = predictor.predict(POINT, labels, multimask_output=True)
    low_res3 = np.ascontiguousarray(low_res)

    def low_res_only() -> object:
        return predictor.predict_low_res(POINT, labels, multimask_output=True)

    def upsample() -> object:
        return upsample_masks(low_res3, original, input_size)

    cases: dict[str, Callable[[], object]] = {
        "point": lambda: predictor.predict(POINT, labels, multimask_output=True),
        "bare_point": lambda: bare.decode(array, point_coords, point_labels),
        "box": lambda: predictor.predict(box=BOX, multimask_output=False),
        "bare_box": lambda: bare.decode(array, box_coords, box_labels),
        "low_res": low_res_only,
        "upsample": upsample,
    }
    timings = interleaved(cases, repeat=settings.decoder_repeat, warmup=settings.warmup)
    size = f"{original[0]}x{original[1]}"
    rows = [
        _row(
            "predict",
            f"1 point, multimask, masks {size}",
            variant,
            provider,
            timings["point"],
            timings["bare_point"],
            Target("<=", 1.3),
            "vs one bare decoder run",
        ),
        _row(
            "predict",
            "  of which upsample+threshold (3 masks)",
            variant,
            provider,
            timings["upsample"],
            None,
            note="edgesam._postprocess alone",
        ),
        _row(
            "predict",
            "1 point, low-res logits only",
            variant,
            provider,
            timings["low_res"],
            timings["bare_point"],
            Target("<=", 1.1),
            "SamPredictor.predict_low_res vs one bare decoder run",
        ),
        _row(
            "predict",
            f"1 box, single mask {size}",
            variant,
            provider,
            timings["box"],
            timings["bare_box"],
            note="vs one bare decoder run",
        ),
    ]
    rows.append(
        _after_encoder_row(
            predictor, bare, rgb, point_coords, point_labels, variant, provider, settings
        )
    )
    rows.extend(
        _batch_rows(predictor, bare, array, original, input_size, variant, provider, settings)
    )
    rows.extend(
        _mask_rows(predictor, bare, array, point_coords, point_labels, variant, provider, settings)
    )
    return rows


def _after_encoder_row(
    predictor: Any,
    bare: BareSam,
    rgb: NDArray[np.uint8],
    coords: NDArray[np.float32],
    labels: NDArray[np.float32],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
) -> Row:
    """The first predict right after set_image, as in a labelling loop (no rest between)."""
    image_input, _ = bare_preprocess(rgb)
    point_labels = np.array([1.0], dtype=np.float32)
    embedding: list[NDArray[np.float32]] = []

    def bare_encode() -> None:
        embedding[:] = [bare.encode(image_input)]

    timings = interleaved(
        {
            "sdk": lambda: predictor.predict(POINT, point_labels, multimask_output=True),
            "bare": lambda: bare.decode(embedding[0], coords, labels),
        },
        repeat=max(3, settings.encoder_repeat // 2),
        warmup=settings.warmup,
        before={"sdk": lambda: predictor.set_image(rgb), "bare": bare_encode},
    )
    size = f"{rgb.shape[0]}x{rgb.shape[1]}"
    return _row(
        "predict",
        f"1 point, multimask, {size}, right after set_image",
        variant,
        provider,
        timings["sdk"],
        timings["bare"],
        note="vs one bare decoder run right after the bare encoder run",
    )


def _batch_rows(
    predictor: Any,
    bare: BareSam,
    array: NDArray[np.float32],
    original: tuple[int, int],
    input_size: tuple[int, int],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
) -> list[Row]:
    prompts = [bare_prompt(None, None, box, original, input_size) for box in BOXES]
    batched = getattr(predictor.model, "batched_decoder", False)
    if batched:
        coords = np.concatenate([coords for coords, _ in prompts])
        labels = np.concatenate([labels for _, labels in prompts])

        def bare_boxes() -> object:
            return bare.decode(array, coords, labels)
    else:

        def bare_boxes() -> object:
            return [bare.decode(array, coords, labels) for coords, labels in prompts]

    cases: dict[str, Callable[[], object]] = {
        "loop": lambda: [predictor.predict(box=box, multimask_output=False) for box in BOXES],
        "batch": lambda: predictor.predict_batch(boxes=BOXES, multimask_output=False),
        "bare": bare_boxes,
    }
    timings = interleaved(
        cases, repeat=max(3, settings.decoder_repeat // 4), warmup=settings.warmup
    )
    how = "one batched run" if batched else "8 runs (batch fixed at 1)"
    return [
        _row(
            "predict",
            "8 boxes, loop of predict",
            variant,
            provider,
            timings["loop"],
            timings["bare"],
            note=f"vs bare decoder: {how}",
        ),
        _row(
            "predict",
            "8 boxes, predict_batch",
            variant,
            provider,
            timings["batch"],
            timings["bare"],
            note=f"vs bare decoder: {how}",
        ),
    ]


def _mask_rows(
    predictor: Any,
    bare: BareSam,
    array: NDArray[np.float32],
    coords: NDArray[np.float32],
    labels: NDArray[np.float32],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
) -> list[Row]:
    available, how = _mask_input_available(predictor.model)
    name = "1 point + mask input, single mask"
    if not available:
        return [
            Row(
                "predict",
                name,
                variant=variant.name,
                provider=provider,
                status="not available",
                note=how,
            )
        ]
    point_labels = np.array([1.0], dtype=np.float32)
    _, scores, low_res = predictor.predict(POINT, point_labels, multimask_output=True)
    mask_input = low_res[int(np.argmax(scores))][None]
    bare_mask = mask_input[None] if "mask_input" in bare.decoder_inputs else None
    cases: dict[str, Callable[[], object]] = {
        "mask": lambda: predictor.predict(
            POINT, point_labels, mask_input=mask_input, multimask_output=False
        ),
        "bare": lambda: bare.decode(array, coords, labels, bare_mask),
    }
    timings = interleaved(cases, repeat=settings.decoder_repeat, warmup=settings.warmup)
    note = how + (
        "; bare run with the same mask"
        if bare_mask is not None
        else "; bare run without mask (the file cannot take one)"
    )
    return [_row("predict", name, variant, provider, timings["mask"], timings["bare"], note=note)]


def everything_rows(
    predictor: Any,
    rgb: NDArray[np.uint8],
    variant: ModelVariant,
    provider: str,
    settings: Settings,
    *,
    points_per_side: int | None = None,
) -> list[Row]:
    """``SamAutomaticMaskGenerator.generate`` per image (defaults unless ``points_per_side``)."""
    grid = "defaults" if points_per_side is None else f"{points_per_side}x{points_per_side} grid"
    name = f"everything {rgb.shape[0]}x{rgb.shape[1]}, {grid}"
    try:
        module = importlib.import_module("edgesam.amg")
        generator_class = module.SamAutomaticMaskGenerator
    except (ImportError, AttributeError) as err:
        return [
            Row(
                "everything",
                name,
                variant=variant.name,
                provider=provider,
                unit="s",
                status="not available",
                note=f"edgesam.amg.SamAutomaticMaskGenerator does not exist yet ({err})",
            )
        ]
    options = {} if points_per_side is None else {"points_per_side": points_per_side}
    generator = generator_class(predictor, **options)
    masks: list[Any] = []

    def run() -> None:
        masks[:] = generator.generate(rgb)

    timings = interleaved({"generate": run}, repeat=settings.everything_repeat, warmup=0)
    stats = timings["generate"]
    batch = (
        "one batched decoder run per 64 points"
        if variant.decoder_kind == "full"
        else ("one decoder run per point")
    )
    return [
        Row(
            "everything",
            name,
            variant=variant.name,
            provider=provider,
            unit="s",
            value=stats.median,
            note=f"{len(masks)} masks kept (random weights: few pass the default "
            f"thresholds); includes set_image; {batch}",
            details={"sdk": stats.as_dict(), "masks": len(masks)},
        )
    ]
