"""Run in a subprocess by test_ray.py: ``edgesam.ray.segment`` on user-built datasets.

``python ray_segment_script.py FOLDER ENCODER DECODER`` starts a local Ray with
two CPUs and prints one JSON line: the masks ``segment`` gives for a dataset
of paths with boxes, and for ``ray.data.read_images`` rows (everything mode).
"""

from __future__ import annotations

import json
import sys

REPORT_PREFIX = "edgesam-test-report: "


def main() -> None:
    import ray

    import edgesam.ray

    folder, encoder, decoder = sys.argv[1:4]
    ray.init(num_cpus=2, include_dashboard=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    names = ["img0000.png", "img0001.png", "nope.png"]
    ds = ray.data.from_items([{"path": name, "boxes": [[2, 3, 30, 20]]} for name in names])
    boxes = edgesam.ray.segment(
        ds,
        encoder=encoder,
        decoder=decoder,
        prompts="boxes",
        num_cpus=0.5,
        base_dir=folder,
    ).take_all()
    images = ray.data.read_images(folder, include_paths=True, mode="RGB")
    everything = edgesam.ray.segment(
        images,
        encoder=encoder,
        decoder=decoder,
        prompts="everything",
        everything_options={"points_per_side": 2},
        num_cpus=0.5,
    ).take_all()
    # Ray forwards its workers' log lines to this stdout too: mark the report.
    print(
        REPORT_PREFIX
        + json.dumps(
            {
                "boxes": {
                    row["path"]: {"masks": row["masks"], "error": row["error"]} for row in boxes
                },
                "everything": {
                    row["path"].rsplit("/", 1)[-1]: [m["segmentation"] for m in row["masks"]]
                    for row in everything
                },
                "columns": sorted(boxes[0]),
            }
        )
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
