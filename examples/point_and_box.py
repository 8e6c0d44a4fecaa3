"""Segment an object from a click and from a box, and save the masks as PNGs.

Usage::

    python examples/point_and_box.py [IMAGE] [--output DIR]
    python examples/point_and_box.py IMAGE --encoder enc.onnx --decoder dec.onnx  # offline

Without IMAGE a synthetic picture is drawn. Without --encoder/--decoder the
official EdgeSAM-3x weights are downloaded from the authors' Hugging Face Space
on first use (about 38 MB, non-commercial licence) and cached.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from edgesam import SamPredictor, WeightsError


def synthetic_image() -> np.ndarray:
    """A 480x640 picture with a few flat shapes on a gradient."""
    image = Image.new("RGB", (640, 480))
    draw = ImageDraw.Draw(image)
    for row in range(480):
        draw.line([(0, row), (640, row)], fill=(40, 60 + row // 4, 90))
    draw.ellipse([80, 120, 280, 320], fill=(220, 40, 40))
    draw.rectangle([360, 80, 580, 260], fill=(40, 200, 60))
    draw.polygon([(400, 440), (520, 300), (620, 440)], fill=(240, 220, 50))
    return np.asarray(image)


def save_mask(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", nargs="?", help="an image file (default: a synthetic picture)")
    parser.add_argument("--output", type=Path, default=Path("edgesam-example"))
    parser.add_argument("--encoder", help="local encoder .onnx (skips the download)")
    parser.add_argument("--decoder", help="local decoder .onnx (with --encoder)")
    args = parser.parse_args()
    # edgesam's own progress lines only; huggingface_hub prints its own warnings itself.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("edgesam").setLevel(logging.INFO)
    logging.getLogger("huggingface_hub").propagate = False

    if args.encoder and args.decoder:
        predictor = SamPredictor.from_files(args.encoder, args.decoder)
    else:
        try:
            predictor = SamPredictor.from_pretrained("edge_sam_3x")
        except WeightsError as err:  # offline, or the Hub unreachable: say so in one line
            parser.exit(
                1,
                f"{parser.prog}: could not get the EdgeSAM weights: {err}\n"
                f"{parser.prog}: offline? pass local files: --encoder ENCODER.onnx "
                "--decoder DECODER.onnx\n",
            )
    print(f"running on {predictor.providers['encoder'][0]}")

    image = args.image if args.image else synthetic_image()
    predictor.set_image(image)
    height, width = predictor.original_size or (0, 0)
    args.output.mkdir(parents=True, exist_ok=True)

    # One click: ask for all four masks and keep the most stable one, as the authors' demo does.
    click = np.array([[width * 0.28, height * 0.45]])
    masks, scores, _ = predictor.predict(
        point_coords=click,
        point_labels=np.array([1]),
        num_multimask_outputs=4,
        use_stability_score=True,
    )
    best = int(scores.argmax())
    save_mask(masks[best], args.output / "point_mask.png")
    print(
        f"click at {click[0].round().tolist()}: mask {best} of 4, stability {scores[best]:.3f}, "
        f"{int(masks[best].sum())} pixels"
    )

    # A box: the single-mask output is the right one for an unambiguous prompt.
    box = np.array([width * 0.55, height * 0.15, width * 0.92, height * 0.56])
    masks, scores, _ = predictor.predict(box=box, multimask_output=False)
    save_mask(masks[0], args.output / "box_mask.png")
    print(f"box {box.round().tolist()}: score {scores[0]:.3f}, {int(masks[0].sum())} pixels")
    print(f"masks written to {args.output}/")


if __name__ == "__main__":
    main()
