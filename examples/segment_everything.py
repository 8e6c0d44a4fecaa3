"""Find every object in an image and save the masks as COCO RLE plus an overlay picture.

Usage::

    python examples/segment_everything.py IMAGE [--output DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from edgesam import SamPredictor
from edgesam.amg import SamAutomaticMaskGenerator
from edgesam.formats import save_overlay, write_coco_json


def main() -> None:
    parser = argparse.ArgumentParser(description="Segment everything in one image.")
    parser.add_argument("image")
    parser.add_argument("--output", type=Path, default=Path("everything-example"))
    parser.add_argument("--encoder")
    parser.add_argument("--decoder")
    args = parser.parse_args()

    if args.encoder and args.decoder:
        predictor = SamPredictor.from_files(args.encoder, args.decoder)
    else:
        predictor = SamPredictor.from_pretrained("edge_sam_3x")
    with Image.open(args.image) as opened:
        image = np.asarray(opened.convert("RGB"))
    generator = SamAutomaticMaskGenerator(predictor, output_mode="binary_mask")
    records = generator.generate(image)
    print(f"{len(records)} masks")

    args.output.mkdir(parents=True, exist_ok=True)
    write_coco_json(
        records,
        args.output / "annotations.json",
        image_size=image.shape[:2],
        file_name=Path(args.image).name,
    )
    save_overlay(image, [record["segmentation"] for record in records], args.output / "overlay.png")
    print(f"wrote {args.output}/annotations.json and overlay.png")


if __name__ == "__main__":
    main()
