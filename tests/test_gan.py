"""GANs at test size on the CPU: shapes, determinism, exact resume, transfer (FreezeD, Lite0
features), FID behaviour, divergence and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from skimage import data as skdata

from conftest import assert_user_error, make_class_folder
from transferlab.engine.checkpoint import load_checkpoint
from transferlab.engine.session import checkpoint_path, metric_columns, read_metrics
from transferlab.errors import TrainingError
from transferlab.metrics.generation import GenerationMetric
from transferlab.runs import read_run
from transferlab.tasks import gan
from transferlab.tasks.gan.augment import DiffAugment

TINY = {"img_size": 32, "width": 8, "batch_size": 8, "eval_every": 0, "sample_every": 4, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A flat folder of 12 photos crops, in mixed sizes and modes (resized, not refused)."""
    folder = tmp_path_factory.mktemp("faces")
    photo = skdata.astronaut()
    for i in range(12):
        crop = Image.fromarray(photo[20 * i : 20 * i + 200, 100 + 10 * i : 300 + 10 * i])
        crop = crop.resize((40 + 8 * (i % 3), 40 + 4 * (i % 2)))
        crop.convert("L" if i == 3 else "RGBA" if i == 4 else "RGB").save(folder / f"{i}.png")
    return folder


def test_training_writes_a_run_with_samples_and_report(faces, tmp_path):
    result = gan.train(faces, arch="dcgan", steps=8, out=tmp_path / "run", **TINY)
    run = result.run_dir
    for name in ("model.safetensors", "run.json", "report.html", "losses.png", "metrics.csv", "progression.png"):
        assert (run / name).is_file(), name
    grid = Image.open(run / "samples" / "step-0000008.png")
    assert grid.size == (8 * 32 + 9 * 2, 8 * 32 + 9 * 2)
    weights = load_file(run / "model.safetensors")
    assert any(k.startswith("G.") for k in weights) and any(k.startswith("D.") for k in weights)


def test_same_seed_same_weights_and_samples(faces, tmp_path):
    a = gan.train(faces, arch="resnet", steps=3, out=tmp_path / "a", **TINY)
    b = gan.train(faces, arch="resnet", steps=3, out=tmp_path / "b", **TINY)
    wa, wb = load_file(a.run_dir / "model.safetensors"), load_file(b.run_dir / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    s1 = gan.sample(a.run_dir, 4, seed=3, out=tmp_path / "s1")
    s2 = gan.sample(b.run_dir, 4, seed=3, out=tmp_path / "s2")
    s3 = gan.sample(a.run_dir, 4, seed=4, out=tmp_path / "s3")
    assert Image.open(s1[0]).tobytes() == Image.open(s2[0]).tobytes() != Image.open(s3[0]).tobytes()
    assert Image.open(s1[0]).size == (32, 32)


def test_resume_continues_the_curve_exactly(faces, tmp_path):
    options = {**TINY, "arch": "resnet", "r1_gamma": 1.0, "steps": 8}
    whole = gan.train(faces, out=tmp_path / "whole", **options)
    gan.train(faces, out=tmp_path / "part", stop_after=4, **options)
    resumed = gan.train(faces, resume=tmp_path / "part")
    a = load_checkpoint(checkpoint_path(whole.run_dir))
    b = load_checkpoint(checkpoint_path(resumed.run_dir))
    logged = [metric_columns(read_metrics(r.run_dir), "step", "d_loss", "g_loss") for r in (whole, resumed)]
    assert logged[1]["step"] == logged[0]["step"] == list(range(1, 9))  # the log cut back and continued
    assert logged[1]["d_loss"] == pytest.approx(logged[0]["d_loss"], rel=1e-5)
    assert logged[1]["g_loss"] == pytest.approx(logged[0]["g_loss"], rel=1e-5)
    for key, value in a["weights"].items():
        assert torch.allclose(value.float(), b["weights"][key].float(), atol=1e-5), key


def test_r1_penalty_trains_in_mixed_precision(faces, tmp_path):
    """R1 takes an inner gradient through the discriminator, which Fabric's mixed-precision
    plugins refused outside fabric.backward (bf16 is the default on GPUs and on CPUs with bf16)."""
    result = gan.train(faces, out=tmp_path / "r1", arch="resnet", r1_gamma=1.0, steps=2, precision="bf16-mixed", **TINY)
    d_loss = metric_columns(read_metrics(result.run_dir), "d_loss")["d_loss"]
    assert len(d_loss) == 2 and all(np.isfinite(d_loss))


def test_conditional_grey_digits_and_sampling_a_class(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path / "digits"
    for i, (image, label) in enumerate(zip(digits.images[:60], digits.target[:60])):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 16).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    result = gan.train(root, arch="dcgan", conditional=True, steps=2, out=tmp_path / "run", **TINY)
    spec = read_run(result.run_dir).model
    assert spec["channels"] == 1 and spec["num_classes"] == 10
    written = gan.sample(result.run_dir, 3, label=7, interpolate=2, out=tmp_path / "s")
    assert (tmp_path / "s" / "interpolation.png").is_file() and len(written) == 5


def test_freeze_d_keeps_the_lowest_blocks_of_the_source(faces, tmp_path):
    source = gan.train(faces, arch="dcgan", steps=2, out=tmp_path / "source", **TINY)
    target = gan.train(faces, arch="dcgan", steps=3, init=source.run_dir, freeze_d=1, out=tmp_path / "t", **TINY)
    before, after = load_file(source.run_dir / "model.safetensors"), load_file(target.run_dir / "model.safetensors")
    assert torch.equal(before["D.blocks.0.0.weight"], after["D.blocks.0.0.weight"])  # frozen
    assert not torch.equal(before["D.blocks.1.0.weight"], after["D.blocks.1.0.weight"])  # trained
    assert not torch.equal(before["G.net.0.weight"], after["G.net.0.weight"])


def test_lite0_feature_discriminator_and_compare_with_scratch(faces, tmp_path):
    options = {**TINY, "eval_every": 2, "fid_samples": 16, "fid_features": "lite0"}
    results = gan.compare(faces, arch="resnet", d_features="lite0", steps=2, out=tmp_path / "cmp", **options)
    assert [r.name for r in results] == ["transfer", "scratch"]
    assert all(r.best and r.extractor == {"extractor": "lite0", "real": 12, "fake": 16} for r in results)
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "transfer" in html and "scratch" in html and "lite0 features" in html
    weights = load_file(results[0].run_dir / "model.safetensors")
    assert any(k.startswith("D.blocks.") for k in weights)


@pytest.mark.heavy(18)
def test_fid_of_real_against_real_is_far_below_real_against_noise():
    rng = np.random.default_rng(0)
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]
    crops = []
    for _ in range(128):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(0, photo.shape[0] - 96), rng.integers(0, photo.shape[1] - 96)
        crops.append(photo[top : top + 96, left : left + 96])
    images = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    metric = GenerationMetric(images[:64], "lite0")
    real = metric.score(images[64:])
    noise = metric.score(torch.randint(0, 256, (64, 3, 96, 96), dtype=torch.uint8))
    # FID on 64 samples carries a large positive bias (a 1280-d covariance from 64 points); KID has none.
    assert real.fid < 0.5 * noise.fid and real.kid < 0.05 * noise.kid
    assert "lite0 features, 64 real / 64 generated" in real.describe()


def test_diffaugment_keeps_shapes_and_gradients():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    y = DiffAugment()(x)
    y.sum().backward()
    assert y.shape == x.shape and x.grad is not None and torch.isfinite(x.grad).all()


def test_divergence_stops_with_the_step_and_keeps_the_last_good_checkpoint(faces, tmp_path, monkeypatch):
    from transferlab.tasks.gan import losses

    real = losses.AdversarialLoss.generator_loss
    calls = {"n": 0}

    def flaky(self, fake, labels, draw=None):
        calls["n"] += 1
        loss = real(self, fake, labels, draw)
        return loss * float("nan") if calls["n"] == 6 else loss

    monkeypatch.setattr(losses.AdversarialLoss, "generator_loss", flaky)
    with pytest.raises(TrainingError, match="non-finite at step 6") as info:
        gan.train(faces, arch="dcgan", steps=10, out=tmp_path / "r", **TINY)
    assert "last good state" in info.value.remedy
    assert load_checkpoint(checkpoint_path(tmp_path / "r"))["step"] == 4


def test_bad_input(faces, tmp_path, cli):
    few = tmp_path / "few"
    few.mkdir()
    for i in range(5):
        Image.fromarray(skdata.chelsea()).save(few / f"{i}.png")
    assert_user_error(cli("gan", "train", few, "--out", tmp_path / "x"), "at least 8")
    base = ("gan", "train", faces, "--img-size", "32", "--width", "8", "--batch-size", "8")
    assert_user_error(cli(*base, "--freeze-d", "9", "--arch", "dcgan", "--out", tmp_path / "y"), "more than")
    assert_user_error(cli(*base, "--img-size", "48"), "not supported")
    assert_user_error(cli(*base, "--steps", "0"), "at least 1")  # 0 is given, not "unset"
    assert_user_error(cli(*base, "--batch-size", "1"), "at least 2")
    assert_user_error(cli(*base, "--compare", "scratch"), "needs a transfer run")
    run = tmp_path / "run"
    assert cli(*base, "--arch", "dcgan", "--steps", "2", "--eval-every", "0", "--out", run)[0] == 0
    checkpoint_path(run).parent.mkdir(exist_ok=True)
    assert_user_error(cli("gan", "train", faces, "--resume", run, "--arch", "resnet"), "cannot continue")
    make_class_folder(tmp_path / "cls", {"a": 4, "b": 4})
    assert_user_error(cli("gan", "sample", tmp_path / "cls"), "not a transferlab run")


def test_sampling_a_run_of_another_task_is_refused(tmp_path, cli):
    from transferlab.runs import save_run

    save_run(tmp_path / "clf", task="classify", state_dict={"w": torch.zeros(1)},
             model={"kind": "timm-classifier"}, class_names=["a", "b"], preprocessing={})  # fmt: skip
    assert_user_error(cli("gan", "sample", tmp_path / "clf"), "not a generator", "transferlab gan train")


def test_generated_images_augment_a_few_shot_classifier(tmp_path, cli):
    from transferlab.tasks import classify

    data = make_class_folder(tmp_path / "data", {"red": 10, "green": 10})
    gan_run = gan.train(data, arch="dcgan", conditional=True, steps=2, out=tmp_path / "gan", **TINY).run_dir
    common = {"backbone": "resnet10t", "strategy": "scratch", "epochs": 1, "img_size": 32, "batch_size": 8}
    summary = classify.augmentation_study(
        data, [0, 1], out=tmp_path / "aug", augment_with=str(gan_run), synthetic_ratio=1.0, **common
    )
    assert len(summary["accuracy"]["with"]) == 2 and summary["verdict"].startswith("Generated images")
    assert "+ 16 generated" in (tmp_path / "aug" / "with-seed0" / "report.html").read_text()
    other = make_class_folder(tmp_path / "other", {"cat": 8, "dog": 8})
    args = ("classify", other, "-b", "resnet10t", "-s", "scratch", "--epochs", "1", "--out", tmp_path / "x")
    assert_user_error(cli(*args, "--augment-with", gan_run), "cannot generate the classes")
    assert not (tmp_path / "x").exists()  # refused before any training
    assert_user_error(cli(*args, "--augment-with", gan_run, "--compare", "scratch,full"), "own with/without")


def test_unset_options_take_the_defaults_of_the_device_and_the_run_says_so(faces, tmp_path, capfd, monkeypatch):
    from transferlab.options.gan import DEVICE_DEFAULTS, GanOptions

    cpu = GanOptions(steps=7).for_device("cpu")
    assert (cpu.arch, cpu.width, cpu.steps) == ("dcgan", DEVICE_DEFAULTS["cpu"]["width"], 7)  # a given value stays
    assert GanOptions().for_device("cuda").arch == "resnet"
    monkeypatch.setenv("TRANSFERLAB_QUIET", "0")
    result = gan.train(faces, steps=2, img_size=32, batch_size=4, eval_every=0, out=tmp_path / "run")
    said = capfd.readouterr().err
    assert "the defaults for a CPU: --arch dcgan --width 32" in said and "--steps" not in said
    spec = read_run(result.run_dir).model
    assert (spec["arch"], spec["width"]) == ("dcgan", 32)  # resolved values are what the run keeps


def test_the_class_rescales_the_generator_instead_of_competing_with_z():
    """The cause of the conditional collapse found on MNIST: with a class code concatenated to z,
    class and latent shared the variance behind the first BatchNorm, and the class crowded z out
    (one image per class). With class BatchNorm the first normalisation sees z alone (relabelling
    the batch leaves its input unchanged), and the class rescales what it normalised."""
    from transferlab.options.gan import GanOptions
    from transferlab.tasks.gan.networks import ClassBatchNorm
    from transferlab.tasks.gan.train import build_networks

    for arch in ("dcgan", "resnet"):
        torch.manual_seed(0)
        generator, _ = build_networks(GanOptions(arch=arch, img_size=32, width=8, conditional=True), 1, 10)
        for module in generator.modules():  # classes that matter: gains and shifts away from 1 and 0
            if isinstance(module, torch.nn.Embedding):
                torch.nn.init.normal_(module.weight, 1.0, 0.5)
        first = next(m for m in generator.modules() if isinstance(m, ClassBatchNorm))
        seen: list[torch.Tensor] = []
        first.norm.register_forward_hook(lambda _m, args, _out, seen=seen: seen.append(args[0]))
        z, labels = torch.randn(16, generator.z_dim), torch.arange(16) % 10
        with torch.no_grad():
            a, b = generator(z, labels), generator(z, (labels + 3) % 10)
        assert torch.equal(seen[0], seen[1]), arch
        assert not torch.allclose(a, b, atol=1e-3), arch  # the class still shapes each image


def test_fine_tuning_takes_the_source_networks_when_unset(faces, tmp_path):
    source = gan.train(faces, arch="resnet", steps=2, out=tmp_path / "source", **TINY)
    options = {k: v for k, v in TINY.items() if k != "width"}
    target = gan.train(faces, steps=2, init=source.run_dir, out=tmp_path / "target", **options)
    spec = read_run(target.run_dir).model
    assert (spec["arch"], spec["width"]) == ("resnet", TINY["width"])  # not the CPU's dcgan / 32


def test_the_result_times_the_training_loop_apart_from_setup(faces, tmp_path):
    """Benchmarks turn a time budget into steps with it: loading data and building networks excluded."""
    result = gan.train(faces, arch="dcgan", steps=2, out=tmp_path / "run", **TINY)
    assert 0 < result.loop_seconds < result.seconds
