"""Entry point: builds the Typer app and turns user errors into two lines and exit code 2."""

from __future__ import annotations

import os
import sys

import typer

from transferlab import __version__
from transferlab.cli import backbones as backbones_cmd
from transferlab.cli import data as data_cmd
from transferlab.cli import demo as demo_cmd
from transferlab.cli import serve as serve_cmd
from transferlab.cli import tasks as tasks_cmd
from transferlab.cli import tune as tune_cmd
from transferlab.cli.console import err, escape, show_warnings_on_console
from transferlab.errors import TransferlabError
from transferlab.registry import TASKS

app = typer.Typer(
    name="transferlab",
    help="Transfer learning on images: fine-tuning, GANs, style transfer, domain adaptation. Works offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)
# The commands that are not a task's (each with the example its --help shows); the tasks' own
# commands, examples and group help come from their records (transferlab.registry).
TOOLS = {
    "export": (demo_cmd.export, "transferlab export runs/classify/my-run --format onnx --quantize int8"),
    "benchmark": (demo_cmd.benchmark, "transferlab benchmark runs/classify/my-run --batch-sizes 1,8"),
    "serve": (serve_cmd.serve, "transferlab serve runs/classify/my-run runs/gan/faces --port 8000 --token $SECRET"),
    "data": (data_cmd.data, "transferlab data photos.zip --val-fraction 0.2"),
    "backbones": (backbones_cmd.backbones, "transferlab backbones --all --filter 'resnet*'"),
    "tasks": (tasks_cmd.tasks, "transferlab tasks --json"),
    "demo": (demo_cmd.demo, "transferlab demo --out runs/demo"),
}
COMMANDS = {
    **{c.name: (getattr(t.cli(), c.function_name), c.example) for t in TASKS.values() for c in t.commands},
    **TOOLS,
}
GROUP_HELP = {task.group: task.summary for task in TASKS.values() if task.group}
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
# One subcommand per task whose record has `tuning` (cli/tune.py generates them from the registry).
app.add_typer(tune_cmd.lr_find_app, name="lr-find")
app.add_typer(tune_cmd.tune_app, name="tune")


#: Options whose value may be left out, and the value they then take (Click has no optional values).
OPTIONAL_VALUES = {"--corruptions": "all"}


def route(argv: list[str]) -> list[str]:
    """``stylize train ...`` -> ``stylize-train ...`` (see above); ``--corruptions`` at the end of
    the line or before another option -> ``--corruptions all``."""
    argv = list(argv)
    for i in reversed(range(len(argv))):
        if argv[i] in OPTIONAL_VALUES and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            argv.insert(i + 1, OPTIONAL_VALUES[argv[i]])
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
