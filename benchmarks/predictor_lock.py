"""Cost of the SamPredictor lock on an uncontended ``predict``: prints a table.

Run from the repository root (builds the tiny test models in a temporary folder,
or uses the reference EdgeSAM files when given ``--onnx-dir``)::

    PYTHONPATH=src:tests python -m benchmarks.predictor_lock [--onnx-dir DIR] [--calls N]

It times the same predictor's ``predict`` through the public (locked) method
and through the undecorated function (``SamPredictor.predict.__wrapped__``),
interleaved, and also one bare ``RLock`` acquire/release pair.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _median_us(function: object, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx-dir", type=Path, help="folder with *_encoder.onnx/*_decoder.onnx")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    from edgesam import EdgeSam, SamPredictor

    with tempfile.TemporaryDirectory() as folder:
        if args.onnx_dir:
            encoder = next(args.onnx_dir.glob("*_encoder.onnx"))
            decoder = next(args.onnx_dir.glob("*_decoder.onnx"))
        else:
            from tiny_models import build_decoder, build_encoder

            encoder = build_encoder(Path(folder) / "encoder.onnx")
            decoder = build_decoder(Path(folder) / "decoder.onnx")
        model = EdgeSam.from_files(encoder, decoder, providers=["cpu"])
        predictor = SamPredictor(model)
        predictor.set_image(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8))
        kwargs = {"point_coords": [[320, 240]], "point_labels": [1]}
        unlocked = SamPredictor.predict.__wrapped__  # type: ignore[attr-defined]

        def locked_call() -> None:
            predictor.predict(**kwargs)

        def bare_call() -> None:
            unlocked(predictor, **kwargs)

        for _ in range(50):  # warm up
            locked_call()
            bare_call()
        rounds = [
            (_median_us(locked_call, 100), _median_us(bare_call, 100))
            for _ in range(args.calls // 100)
        ]
        locked = statistics.median(r[0] for r in rounds)
        bare = statistics.median(r[1] for r in rounds)
        lock = threading.RLock()

        def pair() -> None:
            with lock:
                pass

        rlock = _median_us(pair, 100000)

    print(f"model: {encoder.name} + {decoder.name}")
    print("| call | median (us) |")
    print("|---|---|")
    print(f"| predict, public (locked) | {locked:.1f} |")
    print(f"| predict, undecorated | {bare:.1f} |")
    print(f"| difference | {locked - bare:+.1f} ({(locked - bare) / bare:+.2%}) |")
    print(f"| one RLock acquire+release | {rlock:.2f} |")


if __name__ == "__main__":
    main()
