"""Entry point: builds the Typer app and turns user errors into two lines and exit code 2."""

from __future__ import annotations

import os
import sys

import typer

from transferlab import __version__
from transferlab.cli import adapt as adapt_cmd
from transferlab.cli import autoencoder as autoencoder_cmd
from transferlab.cli import backbones as backbones_cmd
from transferlab.cli import classify as classify_cmd
from transferlab.cli import data as data_cmd
from transferlab.cli import demo as demo_cmd
from transferlab.cli import detect as detect_cmd
from transferlab.cli import features as features_cmd
from transferlab.cli import gan as gan_cmd
from transferlab.cli import predict as predict_cmd
from transferlab.cli import segment as segment_cmd
from transferlab.cli import serve as serve_cmd
from transferlab.cli import stylize as stylize_cmd
from transferlab.cli import translate as translate_cmd
from transferlab.cli.console import err, escape, show_warnings_on_console
from transferlab.errors import TransferlabError

app = typer.Typer(
    name="transferlab",
    help="Transfer learning on images: fine-tuning, GANs, style transfer, domain adaptation. Works offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
# Each command with an example shown under its --help.
COMMANDS = {
    "classify": (classify_cmd.classify, "transferlab classify photos/ --compare scratch,linear,full --img-size 128"),
    "evaluate": (classify_cmd.evaluate, "transferlab evaluate runs/classify/my-run more_photos/"),
    "predict": (predict_cmd.predict, "transferlab predict cat.jpg photos/ --model tf_efficientnet_lite0 --topk 3"),
    "export": (demo_cmd.export, "transferlab export runs/classify/my-run --format onnx"),
    "serve": (serve_cmd.serve, "transferlab serve runs/classify/my-run runs/gan/faces --port 8000 --token $SECRET"),
    "data": (data_cmd.data, "transferlab data photos.zip --val-fraction 0.2"),
    "backbones": (backbones_cmd.backbones, "transferlab backbones --all --filter 'resnet*'"),
    "demo": (demo_cmd.demo, "transferlab demo --out runs/demo"),
    "stylize": (
        stylize_cmd.stylize,
        "transferlab stylize photo.jpg --style starry_night.jpg --size 512 | "
        "transferlab stylize photos/ --model runs/stylize/my-style (train one: transferlab stylize train --help)",
    ),
    "stylize train": (stylize_cmd.train, "transferlab stylize train starry_night.jpg --content photos/ --steps 2000"),
    "features": (features_cmd.features, "transferlab features photos/ --backbone tf_efficientnet_lite0 -o f.npz"),
    "rank": (features_cmd.rank, "transferlab rank photos/ --backbones tf_efficientnet_lite0,tf_efficientnet_lite2"),
    "adapt": (adapt_cmd.adapt, "transferlab adapt --source mnist_folder/ --target usps_folder/ --method dann,cdan"),
    "autoencoder pretrain": (
        autoencoder_cmd.pretrain,
        "transferlab autoencoder pretrain unlabelled/ --img-size 32 (then: classify DATA --backbone ae:RUN)",
    ),
    "gan train": (gan_cmd.train, "transferlab gan train faces.zip --init runs/gan/source --freeze-d 2 --steps 3000"),
    "translate train": (
        translate_cmd.train,
        "transferlab translate train photos/ --task colorize --compare scratch,imagenet --steps 2000",
    ),
    "translate evaluate": (translate_cmd.evaluate, "transferlab translate evaluate runs/translate/my-run photos/"),
    "translate apply": (translate_cmd.apply, "transferlab translate apply runs/translate/my-run old.jpg -o coloured/"),
    "gan sample": (gan_cmd.sample, "transferlab gan sample runs/gan/faces -n 64 --seed 1 --interpolate 8"),
    "segment train": (segment_cmd.train, "transferlab segment train membrane/ --compare scratch,frozen,full"),
    "segment evaluate": (
        segment_cmd.evaluate,
        "transferlab segment evaluate runs/segment/my-run --images test/ --masks testannot/ --json",
    ),
    "segment apply": (segment_cmd.apply, "transferlab segment apply runs/segment/my-run slices/ -o masks/"),
    "detect train": (detect_cmd.train, "transferlab detect train kangaroo/ --compare scratch,frozen,full"),
    "detect evaluate": (detect_cmd.evaluate, "transferlab detect evaluate runs/detect/my-run more/ --json"),
    "detect apply": (detect_cmd.apply, "transferlab detect apply runs/detect/my-run photos/ -o boxes/"),
}
GROUP_HELP = {
    "autoencoder": "Pretrain an autoencoder on unlabelled images; transfer its encoder with --backbone ae:RUN.",
    "gan": "Train GANs, transfer into them (--init/--freeze-d, --d-features lite0), sample from them.",
    "translate": "Image-to-image translation on U-Nets with pretrained encoders: train, evaluate, apply.",
    "segment": "Semantic segmentation on pretrained encoders (U-Net, FPN): train, evaluate, apply.",
    "detect": "Object detection on pretrained backbones (FCOS, RetinaNet, Faster R-CNN): train, evaluate, apply.",
}
# Multi-word commands: "gan train" lives in a sub-app. Click cannot mix a positional argument
# (stylize CONTENT) with subcommands (stylize train), so such a one is registered hidden under a
# joined name, and ``route`` rewrites argv.
_groups: dict[str, typer.Typer] = {}
for _name, (_command, _example) in COMMANDS.items():
    _head, _, _tail = _name.partition(" ")
    _epilog = f"Example: {_example}"
    if not _tail:
        app.command(_name, epilog=_epilog)(_command)
    elif _head in COMMANDS:
        app.command(_name.replace(" ", "-"), epilog=_epilog, hidden=True)(_command)
    else:
        _group = _groups.setdefault(_head, typer.Typer(help=GROUP_HELP[_head], no_args_is_help=True))
        _group.command(_tail, epilog=_epilog)(_command)
for _head, _group in _groups.items():
    app.add_typer(_group, name=_head)


def route(argv: list[str]) -> list[str]:
    """``stylize train ...`` -> ``stylize-train ...`` (see above)."""
    head = argv[0] if argv else ""
    if len(argv) > 1 and f"{head} {argv[1]}" in COMMANDS and head in COMMANDS:
        return [f"{head}-{argv[1]}", *argv[2:]]
    return argv


def _version(value: bool) -> None:
    if value:
        print(f"transferlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Transfer learning on images. Run a command with --help for its options."""


def _is_click_error(exc: BaseException) -> bool:
    # Typer vendors click (typer._click), so match by click's exception interface, not class.
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__) and hasattr(exc, "show")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (testable in-process)."""
    show_warnings_on_console()
    try:
        app(args=route(sys.argv[1:] if argv is None else list(argv)), prog_name="transferlab", standalone_mode=False)
    except TransferlabError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.cause)}", markup=True, soft_wrap=True)
        if exc.remedy:
            err.print(f"[bold]hint:[/] {escape(exc.remedy)}", markup=True, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        if _is_click_error(exc):  # usage errors: unknown command, bad option value (exit 2)
            exc.show(file=sys.stderr)
            return exc.exit_code
        if os.environ.get("TRANSFERLAB_DEBUG"):
            raise
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}", markup=True, soft_wrap=True)
        err.print("[bold]hint:[/] set TRANSFERLAB_DEBUG=1 for the traceback, and report it", markup=True)
        return 1
    return 0


def run() -> None:
    sys.exit(main())
