"""The HTTP API in-process (FastAPI's TestClient) on the reference ONNX models."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import edgesam.formats
from edgesam import EdgeSam, InvalidInputError, SamAutomaticMaskGenerator, SamPredictor
from edgesam.amg import coco_decode_rle, mask_to_coco_rle

IMAGES = {
    "truck": "truck.jpg",
    "groceries": "groceries.jpg",
    "synthetic": "synthetic_480x640.png",
    "tiny": "tiny_37x53.png",
}


@pytest.fixture(scope="module")
def vectors(reference_dir: Path) -> Any:
    return np.load(reference_dir / "vectors.npz")


def image_bytes(reference_dir: Path, name: str) -> bytes:
    return (reference_dir / "images" / IMAGES[name]).read_bytes()


def embed(client: TestClient, data: bytes, **kwargs: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/embed", content=data, headers={"Content-Type": "image/png"}, **kwargs
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(width * 1000 + height)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def assert_error(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == kind
    assert error["message"]
    return error


# -- endpoints ------------------------------------------------------------------------------


def test_health_names_the_model(client: TestClient, reference_model: EdgeSam) -> None:
    answer = client.get("/v1/health").json()
    assert answer["status"] == "ok"
    assert answer["model"] == "edge_sam_random"
    assert answer["fingerprint"] == reference_model.fingerprint
    assert answer["providers"] == {
        "encoder": ["CPUExecutionProvider"],
        "decoder": ["CPUExecutionProvider"],
    }


def test_embed_raw_multipart_and_octet_stream_agree(
    client: TestClient, reference_dir: Path, reference_model: EdgeSam
) -> None:
    data = image_bytes(reference_dir, "groceries")
    first = embed(client, data)
    assert first == {
        "image_id": hashlib.sha256(data).hexdigest(),
        "original_size": [534, 800],
        "input_size": [684, 1024],
        "fingerprint": reference_model.fingerprint,
        "cached": False,
    }
    multipart = client.post("/v1/embed", files={"image": ("g.jpg", data, "image/jpeg")}).json()
    octets = client.post(
        "/v1/embed", content=data, headers={"Content-Type": "application/octet-stream"}
    ).json()
    assert multipart == octets == {**first, "cached": True}


def test_embedding_file_is_the_predictors_embedding(
    client: TestClient, reference_dir: Path, reference_model: EdgeSam
) -> None:
    image_id = embed(client, image_bytes(reference_dir, "synthetic"))["image_id"]
    response = client.get(f"/v1/embeddings/{image_id}")
    assert response.status_code == 200
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert array.dtype == np.float32
    assert array.shape == (1, 256, 64, 64)
    predictor = SamPredictor(reference_model)
    predictor.set_image(reference_dir / "images" / IMAGES["synthetic"])
    np.testing.assert_array_equal(array, np.asarray(predictor.get_image_embedding()))


def test_decoder_file_is_served(
    client: TestClient, reference_model: EdgeSam, reference_dir: Path
) -> None:
    decoder = reference_dir / "onnx" / "edge_sam_random_decoder.onnx"
    assert reference_model.decoder_path == decoder
    response = client.get("/v1/models/decoder.onnx")
    assert response.status_code == 200
    assert response.content == decoder.read_bytes()


def test_openapi_page_and_schema(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/health", "/v1/embed", "/v1/decode", "/v1/everything"} <= set(paths)


# -- /v1/decode equals SamPredictor.predict --------------------------------------------------


def _prompt(vectors: Any, image: str, key: str) -> dict[str, Any]:
    source = "a" if key == "e" else key
    prompt: dict[str, Any] = {}
    for name in ("point_coords", "point_labels", "box"):
        path = f"{image}/{source}/prompt/{name}"
        if path in vectors.files:
            prompt[name] = vectors[path]
    if key == "e":
        prompt["mask_input"] = vectors[f"{image}/a/low_res_logits"][0:1]
    return prompt


def _body(image_id: str, prompt: dict[str, Any], **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"image_id": image_id, **options}
    if "point_coords" in prompt:
        body["points"] = prompt["point_coords"].tolist()
        body["labels"] = prompt["point_labels"].tolist()
    if "box" in prompt:
        body["box"] = prompt["box"].tolist()
    if "mask_input" in prompt:
        raw = np.ascontiguousarray(prompt["mask_input"], dtype="<f4").tobytes()
        body["mask_input"] = base64.b64encode(raw).decode("ascii")
    return body


OPTIONS = [
    {"num_multimask_outputs": 4, "return_low_res": True},
    {"multimask": True, "use_stability_score": True},
    {"multimask": False},
    {"num_multimask_outputs": 1, "use_stability_score": True},
]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_decode_equals_predict(
    client: TestClient,
    reference_dir: Path,
    reference_model: EdgeSam,
    vectors: Any,
    image: str,
) -> None:
    image_id = embed(client, image_bytes(reference_dir, image))["image_id"]
    predictor = SamPredictor(reference_model)
    predictor.set_image(reference_dir / "images" / IMAGES[image])
    checked = 0
    for key in "abcde":
        prompt = _prompt(vectors, image, key)
        for options in OPTIONS:
            response = client.post("/v1/decode", json=_body(image_id, prompt, **options))
            assert response.status_code == 200, response.text
            answer = response.json()
            masks, scores, low_res = predictor.predict(
                prompt.get("point_coords"),
                prompt.get("point_labels"),
                prompt.get("box"),
                prompt.get("mask_input"),
                multimask_output=options.get("multimask", True),
                num_multimask_outputs=options.get("num_multimask_outputs"),
                use_stability_score=options.get("use_stability_score", False),
            )
            assert len(answer["masks"]) == len(masks)
            for record, mask, score in zip(answer["masks"], masks, scores, strict=True):
                assert record["segmentation"] == dict(mask_to_coco_rle(mask))
                assert record["score"] == pytest.approx(float(score), abs=1e-6)
                assert record["area"] == int(mask.sum())
                ys, xs = np.nonzero(mask)
                if len(xs):
                    expected = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
                    assert record["bbox"] == [int(v) for v in expected]
                checked += 1
            if options.get("return_low_res"):
                raw = base64.b64decode(answer["low_res_logits"])
                decoded = np.frombuffer(raw, dtype="<f4").reshape(low_res.shape)
                np.testing.assert_array_equal(decoded, low_res)
            else:
                assert "low_res_logits" not in answer
    assert checked == 5 * (4 + 3 + 1 + 1)


def test_decode_stability_score_is_the_stability_of_the_low_res_logits(
    client: TestClient, reference_dir: Path, vectors: Any
) -> None:
    image_id = embed(client, image_bytes(reference_dir, "tiny"))["image_id"]
    prompt = _prompt(vectors, "tiny", "a")
    plain = client.post("/v1/decode", json=_body(image_id, prompt, num_multimask_outputs=4))
    stable = client.post(
        "/v1/decode",
        json=_body(image_id, prompt, num_multimask_outputs=4, use_stability_score=True),
    )
    expected = vectors["tiny/a/stability_scores"]
    for answer in (plain.json(), stable.json()):
        got = [record["stability_score"] for record in answer["masks"]]
        np.testing.assert_allclose(got, expected, atol=2e-3)
    assert [r["score"] for r in stable.json()["masks"]] == [
        r["stability_score"] for r in stable.json()["masks"]
    ]


def test_decode_png_masks(client: TestClient, reference_dir: Path, vectors: Any) -> None:
    image_id = embed(client, image_bytes(reference_dir, "synthetic"))["image_id"]
    prompt = _prompt(vectors, "synthetic", "a")
    rle = client.post("/v1/decode", json=_body(image_id, prompt)).json()
    png = client.post("/v1/decode", json=_body(image_id, prompt, mask_format="png")).json()
    for as_rle, as_png in zip(rle["masks"], png["masks"], strict=True):
        picture = Image.open(io.BytesIO(base64.b64decode(as_png["segmentation"])))
        assert picture.size == (640, 480)
        np.testing.assert_array_equal(
            np.asarray(picture) > 127, coco_decode_rle(as_rle["segmentation"])
        )


def test_decode_polygons(client: TestClient, reference_dir: Path, vectors: Any) -> None:
    image_id = embed(client, image_bytes(reference_dir, "synthetic"))["image_id"]
    prompt = _prompt(vectors, "synthetic", "a")
    rle = client.post("/v1/decode", json=_body(image_id, prompt, multimask=False)).json()
    answer = client.post(
        "/v1/decode", json=_body(image_id, prompt, multimask=False, mask_format="polygons")
    ).json()
    mask = coco_decode_rle(rle["masks"][0]["segmentation"])
    expected = edgesam.formats.masks_to_polygons(mask, tolerance=0.0)
    assert answer["masks"][0]["segmentation"] == expected


def test_everything_equals_the_generator(
    client: TestClient, reference_dir: Path, reference_model: EdgeSam
) -> None:
    data = image_bytes(reference_dir, "synthetic")
    query = "points_per_side=6&pred_iou_thresh=0&stability_score_thresh=0.5"
    response = client.post(f"/v1/everything?{query}", content=data)
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    generator = SamAutomaticMaskGenerator(
        reference_model,
        points_per_side=6,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.5,
        output_mode="coco_rle",
    )
    expected = generator.generate(reference_dir / "images" / IMAGES["synthetic"])
    assert len(records) == len(expected) > 0
    for got, want in zip(records, expected, strict=True):
        assert got["segmentation"] == dict(want["segmentation"])  # type: ignore[arg-type]
        assert got["bbox"] == [int(v) for v in want["bbox"]]
        assert got["area"] == want["area"]
        assert got["predicted_iou"] == pytest.approx(want["predicted_iou"])
        assert got["stability_score"] == pytest.approx(want["stability_score"])


# -- errors ---------------------------------------------------------------------------------


def test_bad_prompts_are_400_with_the_packages_message(
    client: TestClient, reference_dir: Path
) -> None:
    image_id = embed(client, image_bytes(reference_dir, "tiny"))["image_id"]
    cases = [
        {"points": [[1, 2]], "labels": [1, 0]},
        {"points": [[1]], "labels": [1]},
        {"points": [[1, 2]]},
        {"box": [1, 2, 3]},
        {"labels": [1]},
        {"points": [[1, 2]], "labels": [7]},
        {"points": [[1, 2]], "labels": [1], "mask_input": "not base64!"},
        {"points": [[1, 2]], "labels": [1], "mask_input": base64.b64encode(b"1234").decode()},
        {"points": [[1, 2]] * 300, "labels": [1] * 300},
        {"points": [[float("nan"), 2]], "labels": [1]},
        {"points": [[1e39, 2]], "labels": [1]},
        {"box": [0, 0, float("inf"), 5]},
    ]
    for case in cases:
        # json.dumps writes NaN and Infinity as Python's json reads them; httpx's json= refuses.
        response = client.post(
            "/v1/decode",
            content=json.dumps({"image_id": image_id, **case}),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, (case, response.text)
        assert response.json()["error"]["type"] in ("InvalidPromptError", "InvalidInputError")


def test_invalid_bodies_are_422(client: TestClient) -> None:
    for body in (
        {"image_id": "x", "unknown": 1},
        {"image_id": "x", "mask_format": "gif"},
        {"image_id": "x", "num_multimask_outputs": 2},
        {"points": [[1, 2]]},
    ):
        error = assert_error(client.post("/v1/decode", json=body), 422, "InvalidInputError")
        assert "invalid request body" in error["message"]
    response = client.post(
        "/v1/decode", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "InvalidInputError")


def test_unknown_ids_and_routes_are_404(client: TestClient) -> None:
    for image_id in ("0" * 64, "not-an-id", "A" * 64):
        assert_error(client.get(f"/v1/embeddings/{image_id}"), 404, "UnknownImageError")
        response = client.post("/v1/decode", json={"image_id": image_id, "points": [[1, 1]]})
        assert_error(response, 404, "UnknownImageError")
    assert_error(client.get("/v1/nothing"), 404, "NotFoundError")


def test_bad_images_are_4xx(client: TestClient) -> None:
    assert_error(client.post("/v1/embed", content=b"not an image"), 400, "InvalidImageError")
    assert_error(client.post("/v1/embed", content=b""), 400, "InvalidImageError")
    truncated = png_bytes(64, 48)[:200]
    assert_error(client.post("/v1/embed", content=truncated), 400, "InvalidImageError")
    response = client.post("/v1/embed", content=b"hello", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "UnsupportedMediaTypeError")
    response = client.post("/v1/embed", files={"picture": ("a.png", png_bytes(8, 8))})
    assert_error(response, 400, "InvalidImageError")
    response = client.post("/v1/everything", content=b"not an image")
    assert_error(response, 400, "InvalidImageError")


def test_everything_refuses_unknown_and_out_of_range_options(client: TestClient) -> None:
    data = png_bytes(32, 32)
    for query, word in (
        ("points_per_sid=4", "unknown query parameter"),
        ("points_per_side=abc", "must be a number"),
        ("points_per_side=100000", "at most"),
        ("pred_iou_thresh=2", "pred_iou_thresh"),
        ("use_stability_score=maybe", "use_stability_score"),
    ):
        error = assert_error(
            client.post(f"/v1/everything?{query}", content=data), 400, "InvalidInputError"
        )
        assert word in error["message"], (query, error)


def test_body_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_mb=0.01)
    big = png_bytes(200, 200)
    assert len(big) > 0.01 * (1 << 20)
    assert_error(client.post("/v1/embed", content=big), 413, "PayloadTooLargeError")

    def chunks() -> Any:  # no Content-Length: the limit counts what arrives
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    assert_error(client.post("/v1/embed", content=chunks()), 413, "PayloadTooLargeError")
    assert client.post("/v1/embed", content=png_bytes(8, 8)).status_code == 200


def test_pixel_limit_is_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_pixels=1000)
    error = assert_error(
        client.post("/v1/embed", content=png_bytes(40, 30)), 413, "PayloadTooLargeError"
    )
    assert "1200 pixels" in error["message"]
    assert client.post("/v1/embed", content=png_bytes(20, 30)).status_code == 200


def test_api_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = client.get("/v1/health", headers=headers)
        assert_error(response, 401, "UnauthorizedError")
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert_error(client.get("/v1/models/decoder.onnx"), 401, "UnauthorizedError")
    assert client.get("/").status_code == 200  # the page itself asks for the key


def test_overload_is_503_with_retry_after(
    make_client: Callable[..., TestClient], reference_dir: Path
) -> None:
    client = make_client(workers=1, queue_size=0)
    server = client.app.state.server  # type: ignore[attr-defined]
    release = threading.Event()
    started = threading.Event()
    encode = server.encode

    def slow_encode(data: bytes) -> Any:
        started.set()
        release.wait(30)
        return encode(data)

    server.encode = slow_encode
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(embed, client, image_bytes(reference_dir, "tiny"))
        assert started.wait(30)
        response = client.post("/v1/embed", content=png_bytes(16, 16))
        error = assert_error(response, 503, "OverloadedError")
        assert response.headers["retry-after"] == "1"
        assert "busy" in error["message"]
        release.set()
        assert first.result(timeout=60)["cached"] is False
    assert client.post("/v1/embed", content=png_bytes(16, 16)).status_code == 200


def test_unexpected_failure_is_a_json_500(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    server = client.app.state.server  # type: ignore[attr-defined]

    def broken(data: bytes) -> Any:
        raise RuntimeError("boom")

    server.encode = broken
    error = assert_error(
        client.post("/v1/embed", content=png_bytes(8, 8)), 500, "InternalServerError"
    )
    assert "boom" not in error["message"]


# -- the cache ------------------------------------------------------------------------------


def test_cache_hit_and_eviction(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cache_mb=8)  # two embeddings
    first, second, third = png_bytes(10, 10), png_bytes(11, 10), png_bytes(12, 10)
    a = embed(client, first)["image_id"]
    assert embed(client, first)["cached"] is True
    b = embed(client, second)["image_id"]
    assert client.get(f"/v1/embeddings/{a}").status_code == 200  # a is now the most recent
    c = embed(client, third)["image_id"]  # evicts b, the least recently used
    assert client.get(f"/v1/embeddings/{b}").status_code == 404
    assert client.get(f"/v1/embeddings/{a}").status_code == 200
    assert client.get(f"/v1/embeddings/{c}").status_code == 200
    cache = client.get("/v1/health").json()["cache"]
    assert cache["images"] == 2
    assert cache["bytes"] == 2 * 4 * 256 * 64 * 64
    assert (cache["hits"], cache["misses"], cache["evictions"]) == (1, 3, 1)
    assert embed(client, second)["cached"] is False  # computed again


def test_concurrent_embeds_of_one_image_run_the_encoder_once(
    client: TestClient, reference_dir: Path
) -> None:
    server = client.app.state.server  # type: ignore[attr-defined]
    runs = []
    encode = server.encode

    def counted(data: bytes) -> Any:
        runs.append(1)
        return encode(data)

    server.encode = counted
    data = image_bytes(reference_dir, "groceries")
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: embed(client, data), range(6)))
    assert len(runs) == 1
    assert len({answer["image_id"] for answer in answers}) == 1
    assert sum(not answer["cached"] for answer in answers) == 1
    cache = client.get("/v1/health").json()["cache"]
    assert cache["misses"] == 1
    assert cache["hits"] + cache["shared"] == 5


# -- the page, static files, CORS, the log ---------------------------------------------------


def test_page_headers_and_mime_types(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    (tmp_path / "ort.wasm.min.mjs").write_text("export {};")
    (tmp_path / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    client = make_client(web_runtime=tmp_path)
    page = client.get("/")
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
    assert 'content="/ort/"' in page.text
    script = client.get("/ort/ort.wasm.min.mjs")
    assert script.headers["content-type"] == "text/javascript"
    assert script.headers["cross-origin-embedder-policy"] == "require-corp"
    assert client.get("/ort/ort-wasm-simd-threaded.wasm").headers["content-type"] == (
        "application/wasm"
    )
    for name in ("app.js", "worker.js"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/javascript"


def test_page_uses_the_pinned_cdn_by_default(client: TestClient) -> None:
    page = client.get("/")
    assert "https://cdn.jsdelivr.net/npm/onnxruntime-web@1.30.0/dist/" in page.text
    assert page.headers["cross-origin-embedder-policy"] == "credentialless"
    assert client.get("/ort/ort.wasm.min.mjs").status_code == 404


def test_cors_is_off_unless_asked(make_client: Callable[..., TestClient]) -> None:
    preflight = {
        "Origin": "https://label.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = make_client()
    assert (
        "access-control-allow-origin"
        not in closed.get("/v1/health", headers={"Origin": "https://label.example"}).headers
    )
    opened = make_client(cors_origins=["https://label.example"])
    response = opened.options("/v1/decode", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://label.example"
    other = opened.options("/v1/decode", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_one_log_line_per_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="edgesam.serve"):
        client.get("/v1/health")
        client.get("/v1/embeddings/unknown")
    lines = [record.getMessage() for record in caplog.records if record.name == "edgesam.serve"]
    assert len(lines) == 2
    assert lines[0].startswith("GET /v1/health 200 ")
    assert lines[1].startswith("GET /v1/embeddings/unknown 404 ")
    assert lines[0].endswith(" ms")


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"cache_mb": 1}, "cache_mb"),
        ({"max_body_mb": 0}, "max_body_mb"),
        ({"workers": 0}, "workers"),
        ({"queue_size": -1}, "queue_size"),
        ({"api_key": ""}, "api_key"),
        ({"web_runtime": "/nonexistent"}, "web_runtime"),
    ],
)
def test_create_app_checks_its_options(
    reference_model: EdgeSam, options: dict[str, Any], word: str
) -> None:
    from edgesam.serve import create_app

    with pytest.raises(InvalidInputError, match=word):
        create_app(reference_model, **options)
