"""Refine a mask click by click, feeding the previous low-res logits back as mask_input.

Usage::

    python examples/iterative_clicks.py IMAGE X,Y[,LABEL] [X,Y[,LABEL] ...]
    python examples/iterative_clicks.py IMAGE 500,375 1125,625,0 --encoder e.onnx \\
        --decoder d.onnx --checkpoint edge_sam.pth

Each click is added to the previous ones, and the best mask so far is passed as
``mask_input``, as in segment_anything's interactive tools. With the official
decoder, mask input uses a few weights from the model's ``.pth`` checkpoint:
downloaded on first use with the official weights, and needed as --checkpoint
with local --encoder/--decoder files.
"""

from __future__ import annotations

import argparse

import numpy as np

from edgesam import SamPredictor


def parse_click(text: str) -> tuple[float, float, int]:
    parts = text.split(",")
    return float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Iterative click refinement with mask_input.")
    parser.add_argument("image")
    parser.add_argument("clicks", nargs="+", type=parse_click, metavar="X,Y[,LABEL]")
    parser.add_argument("--encoder")
    parser.add_argument("--decoder")
    parser.add_argument("--checkpoint")
    args = parser.parse_args()
    if bool(args.encoder) != bool(args.decoder):
        parser.error("--encoder and --decoder go together")
    if args.encoder and not args.checkpoint and len(args.clicks) > 1:
        parser.error(
            "--checkpoint (the model's .pth) is needed with --encoder/--decoder: "
            "from the second click on, mask input reads weights from it"
        )

    if args.encoder and args.decoder:
        predictor = SamPredictor.from_files(args.encoder, args.decoder, checkpoint=args.checkpoint)
    else:
        predictor = SamPredictor.from_pretrained("edge_sam_3x")
    predictor.set_image(args.image)

    coords: list[tuple[float, float]] = []
    labels: list[int] = []
    previous_logits = None
    for step, (x, y, label) in enumerate(args.clicks, start=1):
        coords.append((x, y))
        labels.append(label)
        masks, scores, logits = predictor.predict(
            point_coords=np.array(coords),
            point_labels=np.array(labels),
            mask_input=previous_logits,
            # one click is ambiguous: ask for candidates; after that, one refined mask
            multimask_output=len(coords) == 1,
        )
        best = int(scores.argmax())
        previous_logits = logits[best][None]  # (1, 256, 256)
        print(
            f"click {step} at ({x:.0f}, {y:.0f}) label {label}: "
            f"{int(masks[best].sum())} pixels, score {scores[best]:.3f}"
        )


if __name__ == "__main__":
    main()
