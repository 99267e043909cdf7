"""`transferlab serve`, tested as a client sees it: a real server process on 127.0.0.1, real HTTP
requests, and a real browser (Debian's chromium driven by Playwright) on the web page."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from conftest import assert_user_error, write_detection_set, write_segmentation_set
from transferlab import backbones
from transferlab.runs import save_run
from zygote import start_cli

# One worker for the module: its trained fixtures are built once (pytest-xdist).
pytestmark = pytest.mark.xdist_group("serve")

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`transferlab serve ...` in its own process, waited for until /readyz answers 200."""

    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = start_cli(["serve", *args, "--port", str(self.port)], merge_stderr=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited: {self.proc.output()[0]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.stop()
        raise AssertionError("the server did not become ready in 180 s")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A classifier (Lite0, 64 px), a style network and a conditional GAN, all tiny; and photos."""
    from sklearn.datasets import load_digits

    from transferlab.tasks import gan
    from transferlab.tasks.stylize import train_style

    root = tmp_path_factory.mktemp("serve")
    model, config, _ = backbones.create("tf_efficientnet_lite0", num_classes=3, img_size=64)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.classifier.weight, std=0.5)  # a head with opinions, so top-k is not a tie
    save_run(
        root / "flowers",
        task="classify",
        state_dict=model.state_dict(),
        model={"kind": "timm-classifier", "backbone": "tf_efficientnet_lite0", "num_classes": 3},
        class_names=["daisy", "rose", "tulip"],
        preprocessing=config,
        metrics={"val_accuracy": 0.9},
    )
    photos = root / "photos"
    photos.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((120, 90)).save(photos / f"{name}.jpg")
    Image.fromarray(skdata.brick()).convert("RGB").resize((64, 64)).save(root / "style.png")
    train_style(root / "style.png", photos, out=root / "brick", steps=4, train_size=48, style_size=64, batch_size=2,
                width=8, blocks=1)  # fmt: skip
    digits, folder = load_digits(), root / "digits"
    for i, (image, label) in enumerate(zip(digits.images[:40], digits.target[:40])):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 16).astype(np.uint8)).save(folder / str(label) / f"{i}.png")
    gan.train(folder, arch="dcgan", conditional=True, steps=2, out=root / "digits-gan", img_size=32, batch_size=8,
              width=8, eval_every=0, sample_every=2, checkpoint_every=2)  # fmt: skip
    from transferlab.tasks import segment

    scenes = write_segmentation_set(tmp_path_factory.mktemp("scenes"), 6)
    segment.train(
        scenes, out=root / "scenes", img_size=64, epochs=1, batch_size=4, width=8, backbone="resnet10t:random"
    )
    from transferlab.tasks import detect

    shapes = write_detection_set(tmp_path_factory.mktemp("shapes"), 6)
    detect.train(shapes, out=root / "shapes", img_size=64, epochs=1, batch_size=4, width=64, accelerator="cpu",
                 backbone="resnet10t:random")  # fmt: skip
    return root


@pytest.fixture(scope="module")
def server(runs):
    srv = Server(
        "--models-dir", str(runs), "--token", TOKEN, "--max-images", "4", "--max-upload-mb", "3",
        "--max-batch-size", "4",
    )  # fmt: skip
    yield srv
    srv.stop()


def _files(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def _photos(runs: Path) -> list[Path]:
    return sorted((runs / "photos").glob("*.jpg"))


def test_predictions_equal_transferlab_predict(server, runs):
    from transferlab.tasks.predict import predict

    photos = _photos(runs)
    answer = httpx.post(f"{server.url}/models/flowers/predict", files=_files(photos), data={"topk": "3"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]
    local = predict(photos, checkpoint=runs / "flowers", topk=3)
    assert [p["file"] for p in served] == [p.name for p in photos]
    for remote, mine in zip(served, local):
        expected = {name: probability for _, name, probability in mine.top}
        assert remote["top"][0]["label"] == mine.top[0][1]
        assert {t["label"] for t in remote["top"]} == set(expected)
        for t in remote["top"]:
            assert abs(t["probability"] - expected[t["label"]]) < 1e-4, (t, expected)


def test_explain_true_returns_maps_of_the_whole_images(server, runs):
    photos = _photos(runs)[:2]
    answer = httpx.post(f"{server.url}/models/flowers/predict", files=_files(photos), data={"explain": "true"},
                        headers=AUTH, timeout=120)  # the first map loads the explaining side: seconds  # fmt: skip
    assert answer.status_code == 200, answer.text
    for photo, prediction in zip(photos, answer.json()["predictions"]):
        found = prediction["explanation"]
        assert found["method"] == "gradcam" and found["label"] == prediction["top"][0]["label"]
        drawn = Image.open(io.BytesIO(base64.b64decode(found["png_base64"])))
        assert drawn.size == Image.open(photo).size  # the whole image, not the centre crop
        assert 0 <= found["peak"][0] < drawn.width and 0 <= found["peak"][1] < drawn.height
    plain = httpx.post(f"{server.url}/models/flowers/predict", files=_files(photos[:1]), headers=AUTH).json()
    assert "explanation" not in plain["predictions"][0]
    segmented = httpx.post(f"{server.url}/models/scenes/segment", files=_files(photos[:1]), data={"explain": "1"},
                           headers=AUTH, timeout=120).json()["images"][0]  # fmt: skip
    assert {"png_base64", "uncertainty_png_base64", "label", "peak"} <= set(segmented["explanation"])
    detected = httpx.post(f"{server.url}/models/shapes/detect", files=_files(photos[:1]), data={"explain": "true",
                          "score_threshold": "0"}, headers=AUTH, timeout=120).json()["images"][0]  # fmt: skip
    found = detected["explanation"]
    assert found["method"] == "eigencam" and isinstance(found["boxes"], list)
    drawn = Image.open(io.BytesIO(base64.b64decode(found["png_base64"])))
    assert drawn.size == (detected["width"], detected["height"])
    for box in found["boxes"]:  # each box's peak lies inside it
        x1, y1, x2, y2 = box["box"]
        assert x1 - 1 <= box["peak"][0] <= x2 + 1 and y1 - 1 <= box["peak"][1] <= y2 + 1
    wrong = httpx.post(f"{server.url}/models/flowers/predict", files=_files(photos[:1]), data={"explain": "maybe"},
                       headers=AUTH)  # fmt: skip
    assert wrong.status_code == 422 and "explain" in wrong.text


def test_json_base64_and_kserve_v2_agree(server, runs):
    from transferlab.data.transforms import eval_transform

    photo = _photos(runs)[0]
    encoded = base64.b64encode(photo.read_bytes()).decode()
    multipart = httpx.post(f"{server.url}/models/flowers/predict", files=_files([photo]), headers=AUTH).json()
    as_json = httpx.post(f"{server.url}/models/flowers/predict", json={"images": [encoded]}, headers=AUTH).json()
    assert multipart["predictions"][0]["top"] == as_json["predictions"][0]["top"]

    meta = httpx.get(f"{server.url}/v2/models/flowers", headers=AUTH).json()
    assert meta["inputs"][0]["shape"] == [-1, 3, 64, 64] and meta["parameters"]["classes"] == ["daisy", "rose", "tulip"]
    assert httpx.get(f"{server.url}/v2/models/flowers/ready", headers=AUTH).json()["ready"] is True
    x = eval_transform(meta["parameters"]["preprocessing"])(Image.open(photo).convert("RGB"))[None]
    tensor = {"name": "images", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
    v2 = httpx.post(f"{server.url}/v2/models/flowers/infer", json={"id": "r1", "inputs": [tensor]}, headers=AUTH)
    assert v2.status_code == 200, v2.text
    out = {o["name"]: o for o in v2.json()["outputs"]}
    assert v2.json()["id"] == "r1" and out["logits"]["shape"] == [1, 3]
    by_label = {t["label"]: t["probability"] for t in multipart["predictions"][0]["top"]}
    assert np.allclose(out["probabilities"]["data"], [by_label[c] for c in ("daisy", "rose", "tulip")], atol=1e-4)
    files = {"name": "image_files", "datatype": "BYTES", "shape": [1], "data": [encoded]}
    v2_bytes = httpx.post(f"{server.url}/v2/models/flowers/infer", json={"inputs": [files]}, headers=AUTH).json()
    assert np.allclose(v2_bytes["outputs"][1]["data"], out["probabilities"]["data"], atol=1e-5)


def test_style_network_and_gan_endpoints(server, runs):
    photo = _photos(runs)[1]
    styled = httpx.post(f"{server.url}/models/brick/stylize", files=_files([photo]), headers=AUTH)
    assert styled.status_code == 200 and styled.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(styled.content)).size == Image.open(photo).size

    def grid(**params) -> bytes:
        answer = httpx.get(f"{server.url}/models/digits-gan/generate", params=params, headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.content

    assert grid(n=4, seed=1) == grid(n=4, seed=1) != grid(n=4, seed=2)
    assert grid(n=4, seed=1, **{"class": "7"}) != grid(n=4, seed=1)
    posted = httpx.post(f"{server.url}/models/digits-gan/generate", json={"n": 3, "format": "json"}, headers=AUTH)
    images = [Image.open(io.BytesIO(base64.b64decode(i["png_base64"]))) for i in posted.json()["images"]]
    assert len(images) == 3 and images[0].size == (32, 32)
    strip = httpx.get(f"{server.url}/models/digits-gan/interpolate", params={"rows": 2, "steps": 5}, headers=AUTH)
    assert Image.open(io.BytesIO(strip.content)).size == (5 * 32 + 6 * 2, 2 * 32 + 3 * 2)


def test_segmenter_endpoint_answers_as_segment_apply(server, runs, tmp_path):
    from transferlab.tasks import segment

    photo = _photos(runs)[0]
    overlay = httpx.post(f"{server.url}/models/scenes/segment", files=_files([photo]), headers=AUTH)
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png", overlay.text
    assert Image.open(io.BytesIO(overlay.content)).size == Image.open(photo).size
    mask = httpx.post(f"{server.url}/models/scenes/segment", files=_files([photo]), data={"format": "mask"},
                      headers=AUTH)  # fmt: skip
    written = segment.apply(runs / "scenes", [photo], out=tmp_path / "applied", device="cpu")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(mask.content))), np.asarray(Image.open(written[0])))
    many = httpx.post(f"{server.url}/models/scenes/segment", files=_files(_photos(runs)[:2]), headers=AUTH).json()
    assert len(many["images"]) == 2 and sum(many["images"][0]["classes"].values()) == pytest.approx(1, abs=1e-3)
    listed = httpx.get(f"{server.url}/models/scenes", headers=AUTH).json()
    assert listed["kind"] == "segmenter" and listed["endpoints"] == ["POST /models/scenes/segment"]


def test_detector_endpoint_answers_as_detect_apply(server, runs, tmp_path):
    from transferlab.tasks import detect

    photos = _photos(runs)[:2]
    url = f"{server.url}/models/shapes/detect"
    answer = httpx.post(url, files=_files(photos), data={"score_threshold": "0"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    served = answer.json()["images"]
    detect.apply(runs / "shapes", photos, out=tmp_path / "applied", device="cpu", score_threshold=0.0)
    applied = json.loads((tmp_path / "applied" / "detections.json").read_text())
    for photo, entry in zip(photos, served):
        assert (entry["width"], entry["height"]) == Image.open(photo).size
        mine = sorted((d["score"], d["box"]) for d in entry["detections"])
        mine_applied = [d for d in applied if d["image_id"] == photo.name]
        theirs = sorted((d["score"], [*d["bbox"][:2], d["bbox"][0] + d["bbox"][2], d["bbox"][1] + d["bbox"][3]])
                        for d in mine_applied)  # fmt: skip
        assert len(mine) == len(theirs) > 0
        assert np.allclose([b for _, b in mine], [b for _, b in theirs], atol=0.2)
    drawn = httpx.post(url, files=_files(photos[:1]), data={"format": "png"}, headers=AUTH)
    assert drawn.headers["content-type"] == "image/png", drawn.text
    assert Image.open(io.BytesIO(drawn.content)).size == (120, 90)
    bad = httpx.post(url, files=_files(photos[:1]), data={"score_threshold": "2"}, headers=AUTH)
    assert bad.status_code == 422 and "score_threshold" in bad.json()["error"]
    listed = httpx.get(f"{server.url}/models/shapes", headers=AUTH).json()
    assert listed["kind"] == "detector" and listed["endpoints"] == ["POST /models/shapes/detect"]


def test_bad_requests_get_a_cause_and_a_remedy_and_the_server_keeps_serving(server, runs, tmp_path):
    Image.new("1", (12_000, 8_000)).save(tmp_path / "bomb.png")
    photo = _photos(runs)[0]
    predict = f"{server.url}/models/flowers/predict"
    cases = {
        "not an image": (422, httpx.post(predict, files=[("files", ("a.txt", b"hi", "text/plain"))], headers=AUTH)),
        "decompression bomb": (413, httpx.post(predict, files=_files([tmp_path / "bomb.png"]), headers=AUTH)),
        "over the upload limit": (413, httpx.post(predict, content=b"x" * (4 * 2**20), headers=AUTH)),
        "too many images": (413, httpx.post(predict, files=_files([photo] * 5), headers=AUTH)),
        "wrong content type": (415, httpx.post(predict, content=b"hi", headers={**AUTH, "content-type": "text/plain"})),
        "bad base64": (422, httpx.post(predict, json={"images": ["%%%"]}, headers=AUTH)),
        "unknown model": (404, httpx.post(f"{server.url}/models/nope/predict", files=_files([photo]), headers=AUTH)),
        "wrong kind": (404, httpx.post(f"{server.url}/models/brick/predict", files=_files([photo]), headers=AUTH)),
        "bad topk": (422, httpx.post(predict, files=_files([photo]), data={"topk": "99"}, headers=AUTH)),
        "missing token": (401, httpx.post(predict, files=_files([photo]))),
        "wrong token": (401, httpx.get(f"{server.url}/models", headers={"Authorization": "Bearer nope"})),
        "bad v2 shape": (400, httpx.post(f"{server.url}/v2/models/flowers/infer", headers=AUTH, json={
            "inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": [0.0] * 192}]})),
    }  # fmt: skip
    for case, (status, answer) in cases.items():
        assert answer.status_code == status, (case, answer.status_code, answer.text)
        body = answer.json()
        assert body["error"] and body["remedy"], (case, body)
        assert "Traceback" not in answer.text, case
    assert "decompression bomb" in cases["decompression bomb"][1].json()["error"]
    good = httpx.post(predict, files=_files([photo]), headers=AUTH)
    assert good.status_code == 200, good.text


def test_health_models_metrics_and_openapi(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}  # probes need no token
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    listed = {m["name"]: m for m in httpx.get(f"{server.url}/models", headers=AUTH).json()["models"]}
    kinds = {"flowers": "classifier", "brick": "style", "digits-gan": "gan", "scenes": "segmenter",
             "shapes": "detector"}  # fmt: skip
    assert {k: m["kind"] for k, m in listed.items()} == kinds
    assert listed["flowers"]["metrics"]["val_accuracy"] == 0.9 and listed["digits-gan"]["classes"][:2] == ["0", "1"]
    text = httpx.get(f"{server.url}/metrics", headers=AUTH).text
    assert 'transferlab_requests_total{code="200",endpoint="predict",model="flowers"}' in text
    assert "transferlab_request_seconds_bucket" in text and "transferlab_batch_images_count" in text
    assert "process_resident_memory_bytes" in text
    paths = httpx.get(f"{server.url}/openapi.json", headers=AUTH).json()["paths"]
    assert "/models/{name}/predict" in paths and "/v2/models/{name}/infer" in paths
    assert not any(p.startswith("/_workers") for p in paths)  # the worker queues are not public


def test_concurrent_requests_are_batched(server, runs):
    photo = _files(_photos(runs)[:1])
    before = _batched_calls(server)
    results: list[int] = []

    def client() -> None:
        for _ in range(3):
            results.append(httpx.post(f"{server.url}/models/flowers/predict", files=photo, headers=AUTH).status_code)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 24
    calls, requests = (a - b for a, b in zip(_batched_calls(server), before))
    assert requests == 24 and calls < 24  # some model calls answered several requests


def _batched_calls(server: Server) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics", headers=AUTH).text
    values = {}
    for line in text.splitlines():
        for key in ("count", "sum"):
            if line.startswith(f'transferlab_batch_requests_{key}{{model="flowers"}}'):
                values[key] = float(line.split()[-1])
    return values.get("count", 0.0), values.get("sum", 0.0)


def test_the_web_page_classifies_an_uploaded_image(server, runs, tmp_path):
    if CHROMIUM is None:
        assert os.environ.get("CI") != "true", "CI must run the browser test: .ci/run installs Debian's chromium"
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    photo = _photos(runs)[0]
    expected = httpx.post(f"{server.url}/models/flowers/predict", files=_files([photo]), headers=AUTH).json()
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        page.goto(f"{server.url}/?model=flowers")
        page.wait_for_selector("#token-card:not(.hidden)")  # the server has a token: the page asks for it
        page.fill("#token", TOKEN)
        page.click("#token-save")
        page.wait_for_selector('.model.active[data-name="flowers"]')
        page.set_input_files("#file", str(photo))
        top = page.wait_for_selector(".result .bar.top .row span", timeout=30_000)
        assert top.inner_text() == expected["predictions"][0]["top"][0]["label"]
        page.screenshot(path=str(tmp_path / "serve.png"))
        page.check("#explain")  # one toggle: the results are asked for again, with their maps
        mapped = page.wait_for_selector(".result img.map", timeout=60_000)
        assert mapped.get_attribute("src").startswith("data:image/png;base64,")
        page.screenshot(path=str(tmp_path / "explained.png"))
        page.uncheck("#explain")
        assert not page.query_selector_all(".result img.map") and page.query_selector_all(".result img[data-map]")
        page.click('.model[data-name="digits-gan"]')
        page.wait_for_selector("#gan-out img", timeout=30_000)
        page.click('.model[data-name="scenes"]')
        page.set_input_files("#file", str(_photos(runs)[1]))  # another file: the same one fires no change
        caption = page.wait_for_selector(".pair figcaption:has-text('segmented')", timeout=30_000)
        assert "class_0" in caption.inner_text()  # each class's share of the pixels is shown
        page.screenshot(path=str(tmp_path / "segment.png"))
        page.click('.model[data-name="shapes"]')
        page.fill("#min-score", "0")  # the one-epoch test detector is unsure of everything it finds
        page.set_input_files("#file", str(_photos(runs)[2]))
        caption = page.wait_for_selector(".boxed + figcaption", timeout=30_000)
        served = httpx.post(f"{server.url}/models/shapes/detect", files=_files([_photos(runs)[2]]),
                            data={"score_threshold": "0"}, headers=AUTH)  # fmt: skip
        found = served.json()["images"][0]["detections"]
        assert len(page.query_selector_all(".boxed .box")) == len(found) > 0  # every box the API gives is drawn
        assert caption.inner_text().startswith(_photos(runs)[2].name)
        page.screenshot(path=str(tmp_path / "detect.png"))
        page.check("#explain")  # the detector's map, under the same boxes
        mapped = page.wait_for_selector(".boxed img.map", timeout=60_000)
        assert mapped.get_attribute("src").startswith("data:image/png;base64,") and page.query_selector(".boxed .box")
        page.screenshot(path=str(tmp_path / "detect-map.png"))
        browser.close()
    assert (tmp_path / "serve.png").stat().st_size > 10_000
    assert (tmp_path / "segment.png").stat().st_size > 10_000
    assert (tmp_path / "detect-map.png").stat().st_size > 10_000


def test_onnx_runtime_top1_equals_torch(server, runs):
    onnx = Server(str(runs / "flowers"), "--runtime", "onnx")
    try:
        photos = _photos(runs)
        got = httpx.post(f"{onnx.url}/models/flowers/predict", files=_files(photos), data={"topk": "3"}).json()
        ref = httpx.post(f"{server.url}/models/flowers/predict", files=_files(photos), data={"topk": "3"}, headers=AUTH)
        for a, b in zip(got["predictions"], ref.json()["predictions"]):
            assert a["top"][0]["label"] == b["top"][0]["label"]
            assert abs(a["top"][0]["probability"] - b["top"][0]["probability"]) < 1e-3
        assert (runs / "flowers" / "model.onnx").is_file()
    finally:
        assert onnx.stop() == 0


def test_the_int8_model_export_made_is_served(server, runs, tmp_path, cli):
    flowers = tmp_path / "flowers"
    shutil.copytree(runs / "flowers", flowers, ignore=shutil.ignore_patterns("*.onnx"))
    assert_user_error(cli("serve", flowers, "--runtime", "onnx-int8"), "no int8 model", "--quantize int8")
    assert_user_error(cli("serve", runs / "scenes", "--runtime", "onnx"), "runs classifiers", "leave out --runtime")
    code, _, err = cli("export", flowers, "--quantize", "int8", "--calibration", runs / "photos", "--force")
    assert code == 0, err
    from transferlab.tasks.quantize import onnx_session

    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    tensor = {"name": "images", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
    int8 = Server(str(flowers), "--runtime", "onnx-int8")
    try:
        answer = httpx.post(f"{int8.url}/v2/models/flowers/infer", json={"inputs": [tensor]})
        assert answer.status_code == 200, answer.text
        photos = httpx.post(f"{int8.url}/models/flowers/predict", files=_files(_photos(runs)), data={"topk": "1"})
        assert photos.status_code == 200 and len(photos.json()["predictions"]) == 4
    finally:
        assert int8.stop() == 0
    served = np.array({o["name"]: o for o in answer.json()["outputs"]}["logits"]["data"]).reshape(2, 3)
    int8_logits = onnx_session(flowers / "model.int8.onnx").run(None, {"images": x})[0]
    fp32_logits = onnx_session(flowers / "model.onnx").run(None, {"images": x})[0]
    assert np.allclose(served, int8_logits, atol=1e-4)  # the int8 model answers, not the fp32 one
    assert not np.allclose(served, fp32_logits, atol=1e-4)


def test_a_damaged_run_stops_the_start_and_is_named(runs, tmp_path, cli):
    broken = tmp_path / "broken"
    shutil.copytree(runs / "flowers", broken, ignore=shutil.ignore_patterns("*.onnx"))
    (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:5000])
    assert_user_error(cli("serve", broken, "--port", "8765"), f"{broken}/model.safetensors", "complete")
    (broken / "model.safetensors").unlink()
    assert_user_error(cli("serve", broken), "no model.safetensors")
    (broken / "run.json").write_text("{not json")
    assert_user_error(cli("serve", "--models-dir", tmp_path), "damaged")
    assert_user_error(cli("serve", runs / "flowers", "--host", "example.org"), "--host")


def test_sigterm_answers_the_requests_in_flight_then_exits(server, runs, tmp_path):
    """Last in this file: it stops the module's server."""
    ramp = np.linspace(0, 255, 1600, dtype=np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (1600, 1))] * 3, -1)).save(tmp_path / "large.png")
    answers: list[httpx.Response] = []

    def slow_request() -> None:
        files = [("files", ("large.png", (tmp_path / "large.png").read_bytes(), "image/png"))]
        answers.append(httpx.post(f"{server.url}/models/brick/stylize", files=files, data={"max_side": "1600"},
                                  headers=AUTH, timeout=60))  # fmt: skip

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.8)  # the request is being answered
    assert server.stop() == 0  # (stop() waits at most 60 s: a server that never exits fails here)
    thread.join()
    assert answers[0].status_code == 200 and Image.open(io.BytesIO(answers[0].content)).size == (1600, 1600)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz", timeout=2)
