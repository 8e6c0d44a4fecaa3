"""``python -m benchmarks``: run everything, print the table, write the JSON."""

from __future__ import annotations

import argparse
import gc
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from benchmarks._bare import BareSam
from benchmarks._child import ARENA_MODES
from benchmarks._env import RESULTS_DIR, find_reference_dir, machine_info, versions
from benchmarks._latency import (
    Settings,
    everything_rows,
    load_rgb,
    predict_rows,
    set_image_rows,
)
from benchmarks._report import Row, format_table, missed_summary, write_json
from benchmarks._variants import ModelVariant, discover_variants

__all__ = ["main"]

logger = logging.getLogger("benchmarks")

SECTIONS = (
    "compute",
    "set_image",
    "predict",
    "everything",
    "options",
    "cold",
    "memory",
    "quant",
    "device",
    "serve",
    "batch",
)
VARIANTS = ("fp32", "int8", "fp16", "full")
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
}
# Providers with fast float16 convolutions; elsewhere an fp16 encoder is not run.
FP16_PROVIDERS = {"cuda", "coreml", "directml"}


@dataclass(frozen=True)
class Plan:
    """What to run, resolved from the command line."""

    reference: Path
    sections: list[str]
    variants: list[str]
    providers: list[str]
    settings: Settings
    quick: bool
    growth_calls: int
    arena_modes: list[str]
    image: Path
    sources: list[Path]
    output: Path
    providers_here: list[str]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="edgesam benchmarks: SDK vs bare onnxruntime, memory, compute ceiling.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few repetitions, a 20-image RSS run, three arena modes, 4 images per batch "
        "job (about 3.5 minutes on 2 cores; the full run takes about 30)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--providers",
        default=",".join(PROVIDERS),
        help="comma-separated subset of cpu,cuda,coreml,directml; those "
        "onnxruntime does not offer here are listed as not run",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="reference folder with onnx/ and images/ "
        "(default: EDGESAM_REFERENCE_DIR, else ../shared/reference)",
    )
    parser.add_argument(
        "--image",
        type=Path,
        default=None,
        help="image for the latency rows (default: reference images/truck.jpg)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON path (default: benchmarks/results/benchmark-<time>.json)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed rounds of encoder-sized work (default 15, quick 3); "
        "decoder-sized work gets 3x as many",
    )
    parser.add_argument(
        "--growth-calls",
        type=int,
        default=None,
        help="set_image calls in each RSS-growth run (default 200, quick 20)",
    )
    parser.add_argument(
        "--arena-modes",
        default=None,
        help=f"RSS-growth memory configurations, subset of "
        f"{','.join(ARENA_MODES)} (default: all; quick: edgesam,fixed-mmap,bare)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when a target is missed (default: report it and exit 0)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines, only the table"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also onnxruntime's and edgesam's logs"
    )
    return parser


# Seconds each piece takes on a shared 2-core x86 CPU with the default settings (from the
# published runs); scaled by the repeat counts. Faster machines take less.
_COST_S = {
    "compute": 20.0,  # at 4096^3; 2048^3 in --quick
    "set_image": 35.0,  # per variant, 15 rounds
    "predict": 60.0,  # per variant, 45 rounds
    "everything": 77.0,  # per image at 32 points per side
    "options": 60.0,  # fp32, 15 rounds
    "cold": 3.0,  # per process pair, per variant
    "growth_call": 0.6,  # one set_image in an RSS-growth child
    "quant": 22.0,  # per quantised variant, 10 rounds
    "batch_image": 1.6,  # one image through one batch runner (boxes or everything)
    "batch_ray": 12.0,  # Ray: start, and per job an actor loading the model
}


def estimate_seconds(plan: Plan) -> float:
    """A rough duration of ``plan`` on a 2-core CPU (what the progress line promises)."""
    sections, settings = set(plan.sections), plan.settings
    variants = [name for name in plan.variants if name != "fp16"]
    scale = settings.encoder_repeat / 15
    total = 0.0
    if "compute" in sections:
        total += _COST_S["compute"] / (8 if plan.quick else 1)
    per_variant = 0.0
    if sections & {"set_image", "compute"}:
        per_variant += _COST_S["set_image"] * scale
    if "predict" in sections:
        per_variant += _COST_S["predict"] * scale
    total += per_variant * len(variants)
    if "everything" in sections:
        per_image = _COST_S["everything"] / (16 if plan.quick else 1)
        runs = 1 if plan.quick else len(variants)
        total += per_image * settings.everything_repeat * runs
    if "options" in sections and "fp32" in variants:
        total += _COST_S["options"] * scale
    if sections & {"cold", "memory"}:
        runs = 1 if plan.quick else len(variants)
        total += _COST_S["cold"] * (1 if plan.quick else 5) * runs
    if "memory" in sections and "fp32" in variants:
        total += _COST_S["growth_call"] * plan.growth_calls * len(plan.arena_modes)
    if "quant" in sections:
        quantised = [name for name in variants if name == "int8"]
        total += _COST_S["quant"] * len(quantised) * (0.4 if plan.quick else 1)
    total *= max(1, len(plan.providers_here))
    if "batch" in sections and "cpu" in plan.providers:
        from benchmarks._batch import FULL, QUICK, runner_count

        batch = QUICK if plan.quick else FULL
        jobs = 2
        warmup = min(batch.images, 4)  # one copy of each reference image, per job
        total += _COST_S["batch_image"] * (batch.images * runner_count(batch) + warmup) * jobs
        total += _COST_S["batch_ray"] * (1 + jobs) * batch.ray
    return total


def _split(text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = sorted(set(items) - set(allowed))
    if unknown:
        raise SystemExit(f"{option}: unknown {unknown}; choose from {list(allowed)}")
    return items


def _plan(args: argparse.Namespace) -> Plan:
    reference = find_reference_dir(args.reference)
    if reference is None:
        raise SystemExit(
            "reference files not found: pass --reference DIR (a folder with onnx/ and "
            "images/), or set EDGESAM_REFERENCE_DIR"
        )
    quick = bool(args.quick)
    repeat = args.repeat or (3 if quick else 15)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Plan(
        reference=reference,
        sections=_split(args.sections, SECTIONS, "--sections"),
        variants=_split(args.variants, VARIANTS, "--variants"),
        providers=_split(args.providers, tuple(PROVIDERS), "--providers"),
        settings=Settings(
            encoder_repeat=repeat,
            decoder_repeat=3 * repeat,
            everything_repeat=1 if quick else 2,
        ),
        quick=quick,
        growth_calls=args.growth_calls or (20 if quick else 200),
        arena_modes=_split(
            args.arena_modes or ("edgesam,fixed-mmap,bare" if quick else ",".join(ARENA_MODES)),
            ARENA_MODES,
            "--arena-modes",
        ),
        image=args.image or reference / "images" / "truck.jpg",
        sources=sorted(path for path in (reference / "images").iterdir() if path.is_file()),
        output=args.output or RESULTS_DIR / f"benchmark-{stamp}{'-quick' if quick else ''}.json",
        providers_here=[
            name
            for name in _split(args.providers, tuple(PROVIDERS), "--providers")
            if PROVIDERS[name] in ort.get_available_providers()
        ],
    )


def _header_text(machine: dict[str, object], version: dict[str, str | None]) -> str:
    flags = machine["cpu_flags"]
    return "\n".join(
        [
            "edgesam benchmark",
            f"machine: {machine['cpu']}, {machine['physical_cores']} physical cores "
            f"({machine['usable_cpus']} usable), {machine['memory_gib']} GiB RAM, "
            f"flags {' '.join(flags) if isinstance(flags, list) else flags}; {machine['os']}",
            f"onnxruntime providers: {machine['providers_available']}; GPU: {machine['gpu']}",
            "versions: " + ", ".join(f"{key} {value}" for key, value in version.items() if value),
            "",
        ]
    )


def _in_process(
    plan: Plan,
    variant: ModelVariant,
    provider: str,
    rgb: NDArray[np.uint8],
    peak: float | None,
) -> list[Row]:
    from edgesam import SamPredictor

    logger.info("in-process rows: %s on %s", variant.name, provider)
    predictor = SamPredictor.from_files(
        variant.encoder, variant.decoder, checkpoint=variant.checkpoint, providers=[provider]
    )
    bare = BareSam(variant.encoder, variant.decoder, [PROVIDERS[provider]])
    rows: list[Row] = []
    if "set_image" in plan.sections or "compute" in plan.sections:
        image_rows = set_image_rows(predictor, bare, rgb, variant, provider, plan.settings)
        for row in image_rows:
            if row.section == "compute" and peak and row.value is not None:
                row.note += f"; {row.value / peak * 100:.0f}% of the measured matmul peak"
                row.details["fraction_of_peak"] = row.value / peak
        rows.extend(image_rows)
    if "predict" in plan.sections:
        rows.extend(predict_rows(predictor, bare, rgb, variant, provider, plan.settings))
    if "everything" in plan.sections and (variant.name == "fp32" or not plan.quick):
        rows.extend(
            everything_rows(
                predictor,
                rgb,
                variant,
                provider,
                plan.settings,
                points_per_side=8 if plan.quick else None,
            )
        )
    if "device" in plan.sections and variant.name == "fp32":
        from benchmarks._device import device_rows

        rows.extend(
            device_rows(
                bare,
                rgb,
                variant,
                provider,
                plan.settings,
                points_per_side=8 if plan.quick else None,
            )
        )
    if "options" in plan.sections and variant.name == "fp32":
        from benchmarks._options import option_rows
        from edgesam._transforms import preprocess_image

        del predictor, bare
        gc.collect()
        image_input, _ = preprocess_image(rgb)
        rows.extend(option_rows(variant, PROVIDERS[provider], image_input, plan.settings))
    return rows


def _processes(plan: Plan, variant: ModelVariant, provider: str) -> list[Row]:
    from benchmarks._process import cold_start_rows, growth_rows

    rows: list[Row] = []
    if ("cold" in plan.sections or "memory" in plan.sections) and (
        variant.name == "fp32" or not plan.quick
    ):
        logger.info("cold start / peak RSS: %s on %s", variant.name, provider)
        rows.extend(
            cold_start_rows(
                variant, provider, PROVIDERS[provider], plan.image, pairs=1 if plan.quick else 5
            )
        )
    if "memory" in plan.sections and variant.name == "fp32":
        logger.info("RSS growth: %s on %s, %s", variant.name, provider, plan.arena_modes)
        rows.extend(
            growth_rows(variant, provider, plan.sources, plan.growth_calls, plan.arena_modes)
        )
    return rows


def run(plan: Plan) -> tuple[dict[str, object], list[Row]]:
    """Run the plan; returns the JSON header and the rows."""
    machine, version = machine_info(), versions()
    header: dict[str, object] = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "versions": version,
        "settings": dict(
            asdict(plan.settings),
            quick=plan.quick,
            growth_calls=plan.growth_calls,
            arena_modes=plan.arena_modes,
            image=str(plan.image),
            reference=str(plan.reference),
            sections=plan.sections,
        ),
    }
    print(_header_text(machine, version), flush=True)

    available = set(ort.get_available_providers())
    providers = [name for name in plan.providers if PROVIDERS[name] in available]
    rows = [
        Row(
            "providers",
            f"{name} rows",
            provider=name,
            status="not run",
            note=f"{PROVIDERS[name]} is not available here"
            + (": no CUDA GPU found" if name == "cuda" else ""),
        )
        for name in plan.providers
        if name not in providers
    ]
    peak = None
    if "compute" in plan.sections:
        from benchmarks._peak import matmul_peak_rows

        logger.info("matmul peak")
        peak_rows, peak = matmul_peak_rows(2048 if plan.quick else 4096, 3 if plan.quick else 5)
        rows.extend(peak_rows)

    wanted = list(plan.variants)
    if "fp16" in wanted and not FP16_PROVIDERS & set(providers):
        wanted.remove("fp16")
        rows.append(
            Row(
                "variants",
                "fp16 model",
                variant="fp16",
                provider=",".join(providers),
                status="not run",
                note="no provider here has fast float16 convolutions (CUDA, CoreML, DirectML "
                "do); not exported",
            )
        )
    variants, unavailable = discover_variants(plan.reference, RESULTS_DIR / "models", wanted)
    rows.extend(
        Row(
            "variants",
            f"{missing.name} model",
            variant=missing.name,
            status="not available",
            note=missing.reason,
        )
        for missing in unavailable
    )
    rgb = load_rgb(plan.image)
    for provider in providers:
        for variant in variants:
            if variant.precision == "fp16" and provider not in FP16_PROVIDERS:
                rows.append(
                    Row(
                        "variants",
                        "fp16 model",
                        variant=variant.name,
                        provider=provider,
                        status="not run",
                        note=f"{PROVIDERS[provider]} has no fast float16 convolutions",
                    )
                )
                continue
            try:
                rows.extend(_in_process(plan, variant, provider, rgb, peak))
                gc.collect()
                rows.extend(_processes(plan, variant, provider))
            except Exception as err:  # one broken variant must not lose the other rows
                logger.exception("%s on %s failed", variant.name, provider)
                rows.append(
                    Row(
                        "variants",
                        f"{variant.name} model",
                        variant=variant.name,
                        provider=provider,
                        status="failed",
                        note=f"{type(err).__name__}: {err}",
                    )
                )
    if "serve" in plan.sections:
        from benchmarks._serve import serve_rows

        logger.info("edgesam serve")
        rows.extend(serve_rows(plan.reference, plan.image, plan.quick))
    if "quant" in plan.sections:
        from benchmarks._quant import quantisation_rows

        logger.info("quantised variants")
        rows.extend(quantisation_rows(variants, plan.reference, plan.quick))
    if "batch" in plan.sections:
        rows.extend(_batch_section(plan))
    return header, rows


def _batch_section(plan: Plan) -> list[Row]:
    """The ``batch`` section: on the CPU only, once, whatever ``--providers`` says."""
    if "cpu" not in plan.providers:
        return [
            Row(
                "batch",
                "edgesam batch",
                provider=",".join(plan.providers),
                status="not run",
                note="the batch section runs on the CPU: add cpu to --providers",
            )
        ]
    from benchmarks._batch import batch_rows

    logger.info("edgesam batch: plain loop, local pipeline, Ray")
    try:
        return batch_rows(plan.reference, plan.quick)
    except Exception as err:  # a broken section must not lose the other rows
        logger.exception("the batch section failed")
        return [
            Row("batch", "edgesam batch", status="failed", note=f"{type(err).__name__}: {err}")
        ]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    # Progress by default: the benchmark's own lines, whatever the other loggers do.
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    plan = _plan(args)
    estimate = estimate_seconds(plan)
    logger.info(
        "estimated time: about %s on a 2-core CPU (less on faster machines%s)",
        _minutes(estimate),
        ""
        if not ({"int8", "fp16", "full"} & set(plan.variants))
        else "; the first run also exports the model variants, a few minutes more",
    )
    started = time.perf_counter()
    header, rows = run(plan)
    header["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(format_table(rows))
    write_json(plan.output, header, rows)
    missed, closing = missed_summary(rows)
    print(
        f"\n{len(rows)} rows in {_minutes(float(header['elapsed_s']))}; "  # type: ignore[arg-type]
        f"JSON written to {plan.output}\n{closing}"
    )
    return 1 if args.strict and missed else 0


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
