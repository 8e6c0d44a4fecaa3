"""Segment every box a detector found in one image, with one call.

Usage::

    python examples/detector_boxes.py IMAGE X0,Y0,X1,Y1 [X0,Y0,X1,Y1 ...]

``predict_batch`` takes the boxes as a (B, 4) array and returns masks of shape
(B, 1, H, W). A decoder exported with a batch axis (``edgesam export
--variants full``) decodes them in one run; the official one runs per box.
"""

from __future__ import annotations

import argparse

import numpy as np

from edgesam import SamPredictor


def main() -> None:
    parser = argparse.ArgumentParser(description="Masks for a detector's boxes.")
    parser.add_argument("image")
    parser.add_argument("boxes", nargs="+", metavar="X0,Y0,X1,Y1")
    parser.add_argument("--encoder")
    parser.add_argument("--decoder")
    args = parser.parse_args()

    boxes = np.array([[float(v) for v in box.split(",")] for box in args.boxes])
    if args.encoder and args.decoder:
        predictor = SamPredictor.from_files(args.encoder, args.decoder)
    else:
        predictor = SamPredictor.from_pretrained("edge_sam_3x")
    predictor.set_image(args.image)

    masks, scores, _ = predictor.predict_batch(boxes=boxes, multimask_output=False)
    for box, mask, score in zip(boxes, masks[:, 0], scores[:, 0], strict=True):
        print(f"box {box.round().tolist()}: {int(mask.sum())} pixels, score {score:.3f}")


if __name__ == "__main__":
    main()
