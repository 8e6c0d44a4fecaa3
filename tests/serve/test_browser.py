"""End to end: ``edgesam serve`` in a subprocess, the page in headless Chromium.

Needs Debian's ``chromium`` (``EDGESAM_CHROMIUM``, default ``/usr/bin/chromium``)
and onnxruntime-web's ``dist`` folder from npm (``EDGESAM_ORT_WEB_DIST``;
``.ci/run`` installs both). The browser decodes with onnxruntime-web; its mask
must match the SDK's for the same click (IoU >= 0.99).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesam import EdgeSam, SamPredictor

from .serve_helpers import ARTIFACTS, REPO_ROOT, serve_process

CHROMIUM = Path(os.environ.get("EDGESAM_CHROMIUM", "/usr/bin/chromium"))
ORT_WEB_DIST = os.environ.get(
    "EDGESAM_ORT_WEB_DIST",
    str(REPO_ROOT / ".artifacts" / "ortweb" / "node_modules" / "onnxruntime-web" / "dist"),
)
IMAGE = "synthetic_480x640.png"

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@pytest.fixture(scope="module")
def server(reference_dir: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or EDGESAM_CHROMIUM)")
    if not (Path(ORT_WEB_DIST) / "ort.wasm.min.mjs").is_file():
        pytest.skip(
            f"onnxruntime-web not found at {ORT_WEB_DIST}: npm install onnxruntime-web@1.30.0 "
            "and set EDGESAM_ORT_WEB_DIST to its dist folder"
        )
    with serve_process(reference_dir, "--web-runtime", ORT_WEB_DIST) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def predictor(reference_dir: Path) -> SamPredictor:
    onnx = reference_dir / "onnx"
    model = EdgeSam.from_files(
        onnx / "edge_sam_random_encoder.onnx", onnx / "edge_sam_random_decoder.onnx"
    )
    predictor = SamPredictor(model)
    predictor.set_image(reference_dir / "images" / IMAGE)
    return predictor


def _open(browser: Any, server: str, reference_dir: Path, block_runtime: bool = False) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    if block_runtime:
        page.route("**/ort/**", lambda route: route.abort())
    page.goto(f"{server}/")
    page.wait_for_function("window.edgesam && window.edgesam.state.decoder !== 'starting'")
    page.set_input_files("#file", str(reference_dir / "images" / IMAGE))
    page.wait_for_function("window.edgesam.state.imageId !== null", timeout=120_000)
    return page


def _browser_mask(page: Any, index: int | None = None) -> np.ndarray:
    state = page.evaluate("({width: edgesam.state.width, height: edgesam.state.height})")
    text = page.evaluate(f"edgesam.maskBase64({'' if index is None else index})")
    flat = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return flat.reshape(state["height"], state["width"]).astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _wait_decodes(page: Any, count: int) -> None:
    page.wait_for_function(f"edgesam.state.decodeCount >= {count}", timeout=60_000)


def test_click_decoded_in_the_browser_matches_the_sdk(
    browser: Any, server: str, reference_dir: Path, predictor: SamPredictor
) -> None:
    page = _open(browser, server, reference_dir)
    assert page.evaluate("edgesam.state.decoder") == "browser", page.evaluate("edgesam.state.error")
    assert page.evaluate("crossOriginIsolated") is True
    assert page.evaluate("edgesam.state.backend") in ("wasm", "webgpu")
    area = page.locator("#overlay").bounding_box()
    page.mouse.click(area["x"] + area["width"] * 0.55, area["y"] + area["height"] * 0.4)
    _wait_decodes(page, 1)
    points = page.evaluate("edgesam.state.points")
    assert len(points) == 1
    assert points[0][2] == 1
    masks, scores, _ = predictor.predict(
        np.array([points[0][:2]], dtype=np.float32),
        np.array([1]),
        num_multimask_outputs=4,
        use_stability_score=True,
    )
    browser_scores = page.evaluate("edgesam.state.scores")
    np.testing.assert_allclose(browser_scores, scores, atol=2e-3)
    assert page.evaluate("edgesam.state.selected") == int(scores.argmax())
    ious = [_iou(_browser_mask(page, index), masks[index]) for index in range(4)]
    print(f"\nbrowser vs SDK IoU per candidate (click): {[round(float(iou), 6) for iou in ious]}")
    assert min(ious) >= 0.99
    assert _iou(_browser_mask(page), masks[int(scores.argmax())]) >= 0.99
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "click.png"))

    # A background point (shift-click) decodes again; undo brings the first mask back.
    page.keyboard.down("Shift")
    page.mouse.click(area["x"] + area["width"] * 0.2, area["y"] + area["height"] * 0.8)
    page.keyboard.up("Shift")
    _wait_decodes(page, 2)
    assert [point[2] for point in page.evaluate("edgesam.state.points")] == [1, 0]
    page.click("#undo")
    _wait_decodes(page, 3)
    assert len(page.evaluate("edgesam.state.points")) == 1
    assert _iou(_browser_mask(page, 0), masks[0]) >= 0.99
    page.click("#clear")
    page.wait_for_function("edgesam.state.candidates.length === 0")
    assert page.errors == []
    page.close()


def test_box_drag_matches_the_sdk(
    browser: Any, server: str, reference_dir: Path, predictor: SamPredictor
) -> None:
    page = _open(browser, server, reference_dir)
    area = page.locator("#overlay").bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.75, area["y"] + area["height"] * 0.5, steps=5)
    page.mouse.up()
    _wait_decodes(page, 1)
    box = page.evaluate("edgesam.state.box")
    assert box is not None
    assert box[2] - box[0] > 100
    masks, _, _ = predictor.predict(box=np.array(box, dtype=np.float32), multimask_output=False)
    assert page.evaluate("edgesam.state.candidates.length") == 1
    iou = _iou(_browser_mask(page), masks[0])
    print(f"\nbrowser vs SDK IoU (box): {iou:.6f}")
    assert iou >= 0.99
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "box.png"))
    assert page.errors == []
    page.close()


def test_page_falls_back_to_the_server_without_onnxruntime_web(
    browser: Any, server: str, reference_dir: Path, predictor: SamPredictor
) -> None:
    page = _open(browser, server, reference_dir, block_runtime=True)
    assert page.evaluate("edgesam.state.decoder") == "server"
    area = page.locator("#overlay").bounding_box()
    page.mouse.click(area["x"] + area["width"] * 0.55, area["y"] + area["height"] * 0.4)
    _wait_decodes(page, 1)
    point = page.evaluate("edgesam.state.points")[0]
    masks, scores, _ = predictor.predict(
        np.array([point[:2]], dtype=np.float32),
        np.array([1]),
        num_multimask_outputs=4,
        use_stability_score=True,
    )
    for index in range(4):
        np.testing.assert_array_equal(_browser_mask(page, index), masks[index])
    assert page.evaluate("edgesam.state.selected") == int(scores.argmax())
    page.close()


def test_coco_rle_download_matches_pycocotools_encoding(
    browser: Any, server: str, reference_dir: Path
) -> None:
    from edgesam.amg import mask_to_coco_rle

    page = _open(browser, server, reference_dir)
    area = page.locator("#overlay").bounding_box()
    page.mouse.click(area["x"] + area["width"] * 0.3, area["y"] + area["height"] * 0.6)
    _wait_decodes(page, 1)
    mask = _browser_mask(page)
    counts = page.evaluate(
        "edgesam.cocoCounts(edgesam.state.candidates[edgesam.state.selected], "
        "edgesam.state.height, edgesam.state.width)"
    )
    assert counts == mask_to_coco_rle(mask)["counts"]
    with page.expect_download() as download:
        page.click("#download-png")
    assert download.value.suggested_filename == "mask.png"
    page.close()


def test_screenshot_for_the_docs() -> None:
    """Keep one screenshot beside docs/serve.md when the browser tests made one."""
    shot = ARTIFACTS / "click.png"
    if not shot.is_file() or os.environ.get("EDGESAM_UPDATE_DOCS_IMAGES") != "1":
        pytest.skip("set EDGESAM_UPDATE_DOCS_IMAGES=1 to refresh docs/images/serve-page.png")
    from PIL import Image

    with Image.open(shot) as picture:
        small = picture.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        small.save(REPO_ROOT / "docs" / "images" / "serve-page.png", optimize=True)


def test_page_asks_for_the_api_key_once(browser: Any, server: str, reference_dir: Path) -> None:
    del server  # only for its skips: Chromium and onnxruntime-web are there
    options = ("--web-runtime", ORT_WEB_DIST, "--api-key", "s3cret")
    with serve_process(reference_dir, *options, log_name="server-key.log") as (url, _):
        page = browser.new_page()
        prompts: list[str] = []

        def answer(dialog: Any) -> None:
            prompts.append(dialog.message)
            dialog.accept("s3cret")

        page.on("dialog", answer)
        page.goto(f"{url}/")
        page.wait_for_function("window.edgesam && window.edgesam.state.decoder !== 'starting'")
        assert page.evaluate("edgesam.state.decoder") == "browser", page.evaluate(
            "edgesam.state.error"
        )
        page.set_input_files("#file", str(reference_dir / "images" / IMAGE))
        page.wait_for_function("window.edgesam.state.imageId !== null", timeout=120_000)
        area = page.locator("#overlay").bounding_box()
        page.mouse.click(area["x"] + area["width"] * 0.5, area["y"] + area["height"] * 0.5)
        _wait_decodes(page, 1)
        assert prompts == ["This server needs an API key:"]
        page.close()
