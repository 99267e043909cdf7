"""CLI flags generated from a task's options dataclass (``engine.options.option`` fields), and
``--config FILE``: YAML or JSON options, or a run (its ``run.json``) to repeat or vary it.

Typer builds a command from a function's signature, so :func:`with_options` gives the command a
signature that adds one keyword parameter per field; the command receives the values the user
gave (``--config`` first, the command line over it) as one ``options`` dict.
"""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import typer

from transferlab.errors import UsageError

#: ``--resume`` of the commands whose runs continue with their own options (gan, translate, autoencoder)
RESUME = typer.Option(None, "--resume", help="Continue a stopped run exactly.")


def refuse_compare_with_resume(compare: object, resume: object) -> None:
    """A comparison trains several runs; a resume continues one: the two do not go together."""
    if compare and resume:
        from transferlab.errors import UsageError

        raise UsageError("--compare and --resume together", "resume each run of a comparison on its own")


CONFIG_HELP = "Options from a YAML/JSON file, or a run folder / run.json to repeat (flags given override it)."


def _flag_type(annotation: Any) -> type:
    """``int | None`` -> int; ``int | str`` -> str (parsed by the task); bool stays a switch."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return args[0] if len(args) == 1 else str
    return annotation


def _parameters(options_cls: type, exclude: tuple[str, ...]) -> list[inspect.Parameter]:
    from transferlab.engine.options import TrainOptions

    hints = typing.get_type_hints(options_cls)
    shared = {f.name for f in fields(TrainOptions)}
    out = []
    for spec in sorted(fields(options_cls), key=lambda f: f.name in shared):  # the task's own first
        help_text = spec.metadata.get("help")
        if help_text is None or spec.name in exclude:
            continue
        kind = _flag_type(hints[spec.name])
        flags = list(spec.metadata.get("flags") or (f"--{spec.name.replace('_', '-')}",))
        if kind is bool:
            flags[0] = f"{flags[0]}/--no-{flags[0][2:]}" if "/" not in flags[0] else flags[0]
        choices = spec.metadata.get("choices")
        shown = f" Choices: {', '.join(choices)}." if choices else ""
        default = f" (default: {spec.default})" if spec.default is not None else ""
        info = typer.Option(None, *flags, help=f"{help_text}{shown}{default}", show_default=False)
        out.append(inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind | None))
    return out


def with_options(options_cls: type, exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Give a command one flag per field of ``options_cls`` and ``--config``; it is called with
    ``options=`` the dict of values given."""

    def wrap(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "options"]
        generated = _parameters(options_cls, exclude)
        names = [p.name for p in generated]
        config = inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, default=typer.Option(None, "--config", help=CONFIG_HELP),
            annotation=Path | None,
        )  # fmt: skip

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            values = read_config(kwargs.pop("config"), options_cls) | {k: v for k, v in given.items() if v is not None}
            return command(**kwargs, options=values)

        hints = typing.get_type_hints(command)
        run.__signature__ = inspect.Signature([*own, *generated, config])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: hints.get(p.name, p.annotation) for p in own} | {
            p.name: p.annotation for p in (*generated, config)
        }
        del run.__wrapped__  # typer must read the new signature, not the command's
        return run

    return wrap


def read_config(path: Path | None, options_cls: type) -> dict[str, Any]:
    """Option values from ``path``: a YAML/JSON mapping, a run.json, or a run folder."""
    if path is None:
        return {}
    path = Path(path)
    if path.is_dir():
        path = path / "run.json"
    if not path.is_file():
        raise UsageError(f"--config {path} does not exist", "give a YAML/JSON file or a run folder")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path} cannot be read ({exc})", "give a YAML or JSON file") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - json's and yaml's own error types
        problem = str(exc).splitlines()[0]
        raise UsageError(f"--config {path} is not valid YAML/JSON ({problem})", "check its syntax") from None
    if isinstance(values, dict) and values.get("format") == "transferlab-run":
        values = values.get("options") or {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path} is not a mapping of options", "write one `name: value` per line")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    known = {f.name for f in fields(options_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"--config {path} has unknown option(s): {', '.join(unknown)}", "see the command's --help")
    return values
