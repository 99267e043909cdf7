"""The task registry: every record leads where it says (API, commands, loader, server, export),
the CLI, the run kinds, the server and ``transferlab.TASK`` are generated from it, and
``transferlab tasks`` shows it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import transferlab
from transferlab.registry import OWNERS, TASKS

TRAINING = [task for task in TASKS.values() if task.options is not None]


@pytest.mark.parametrize("task", TASKS.values(), ids=list(TASKS))
def test_every_record_leads_to_its_api_and_commands(task):
    api = task.api()
    assert getattr(transferlab, task.name) is api
    cli = task.cli()
    for command in task.commands:
        assert callable(getattr(cli, command.function_name)), command.name
    if task.options is not None:
        assert callable(api.train), f"transferlab.{task.name}.train is the one training entry"
    if task.makes:
        assert callable(api.load_run), f"{task.name} makes runs, so its API loads them"
    if task.exports:
        assert callable(api.exportable)


def test_old_entry_names_stay_as_aliases():
    assert transferlab.classify.fit is transferlab.classify.train
    assert transferlab.autoencoder.pretrain is transferlab.autoencoder.train
    assert transferlab.stylize.train is transferlab.stylize.train_style


def test_run_kinds_server_and_export_agree_with_the_records():
    from transferlab.runs import KINDS
    from transferlab.serve.catalog import KINDS as SERVED

    assert set(KINDS) == set(OWNERS)
    assert set(SERVED) == {kind for task in TASKS.values() for kind in task.serves}
    for kind, run_kind in KINDS.items():
        owner = OWNERS[kind]
        assert ("serve" in run_kind.accepted_by) == (kind in owner.serves), kind
        assert ("export" in run_kind.accepted_by) == bool(owner.exports), kind
        assert kind not in owner.serves or SERVED[kind].endpoints == owner.serves[kind].endpoints


def test_each_served_kind_is_served_from_its_own_task_folder():
    """A task's ``serving.py`` holds its worker and routes: serve/ names no task."""
    import importlib

    from transferlab.serve.catalog import KINDS as SERVED
    from transferlab.serve.workers import RunWorker

    for task in TASKS.values():
        for kind, served in task.serves.items():
            module = importlib.import_module(f"transferlab.tasks.{task.name}.serving")
            serving = module.SERVING[served.name]
            assert SERVED[kind].serving is serving and issubclass(serving.worker, RunWorker), kind
            assert {e.split()[1] for e in served.endpoints} <= {route.path for route in serving.routes}, kind
    serve_dir = Path(importlib.import_module("transferlab.serve").__file__).parent
    for source in serve_dir.glob("*.py"):
        assert "transferlab.tasks." not in source.read_text().replace("transferlab.tasks.export", "").replace(
            "transferlab.tasks.explain", ""
        ), f"{source.name} reaches into a task"


def test_the_cli_is_generated_from_the_records():
    from transferlab.cli.main import COMMANDS, GROUP_HELP

    for task in TASKS.values():
        for command in task.commands:
            function, example = COMMANDS[command.name]
            assert function is getattr(task.cli(), command.function_name) and example == command.example
        if task.group:
            assert GROUP_HELP[task.group] == task.summary


def test_a_run_of_a_kind_loads_through_its_task(tmp_path, monkeypatch):
    from transferlab import registry

    seen = []
    monkeypatch.setattr(TASKS["segment"].api(), "load_run", lambda run_dir, *a: seen.append((run_dir, a)) or "net")
    assert registry.load_run(registry.SEGMENTER, tmp_path, 1) == "net" and seen == [(tmp_path, (1,))]


def test_tasks_lists_the_registry_as_json(cli):
    code, out, _ = cli("tasks", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and list(rows) == list(TASKS)
    segment = rows["segment"]
    assert segment["commands"] == ["segment train", "segment evaluate", "segment apply"]
    assert segment["run_kinds"] == ["segmenter"] and segment["export_formats"] == ["onnx", "torchscript"]
    assert segment["serve_endpoints"] == ["POST /models/{name}/segment"] and segment["options"] == "SegmentOptions"
    assert rows["detect"]["export_formats"] == ["onnx"] and rows["predict"]["options"] is None


def test_tasks_table_names_every_task(cli):
    code, out, _ = cli("tasks")
    assert code == 0 and all(name in out for name in TASKS) and "segment train" in out


def test_the_cli_and_the_registry_stay_torch_free():
    """``transferlab --help`` and ``transferlab tasks`` read the records without importing torch."""
    probe = "import sys, transferlab.cli.main, transferlab.registry; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"


def test_one_strategy_registry_serves_classify_and_the_dense_tasks():
    from transferlab.errors import UsageError
    from transferlab.options.detect import STRATEGIES as DETECT_CHOICES
    from transferlab.options.segment import STRATEGIES as SEGMENT_CHOICES
    from transferlab.strategies import get_strategy, names_for

    assert SEGMENT_CHOICES == names_for("segment") == ("frozen", "full", "gradual", "scratch")
    assert DETECT_CHOICES == ("frozen", "full", "scratch")
    assert names_for("classify") == ("linear", "frozen", "full", "gradual", "llrd", "scratch")
    assert names_for("translate") == ("frozen", "full", "gradual", "scratch")
    mult = {"body_lr_mult": 0.1}
    scale = {name: [get_strategy(name, "segment").encoder_scale(e, 30, mult) for e in (0, 9, 10, 29)]
             for name in SEGMENT_CHOICES}  # fmt: skip
    assert scale == {"frozen": [0.0] * 4, "full": [0.1] * 4, "gradual": [0.0, 0.0, 0.1, 0.1], "scratch": [1.0] * 4}
    assert not get_strategy("scratch", "detect").pretrained and get_strategy("frozen", "detect").body_frozen(29, 30, 2)
    with pytest.raises(UsageError, match="unknown strategy 'gradual' for detect") as refused:
        get_strategy("gradual", "detect")
    assert refused.value.remedy == "use one of: frozen, full, scratch"


def test_every_served_endpoint_a_record_names_is_a_route_of_the_server():
    from fastapi import FastAPI

    from transferlab.options.serve import ServeOptions
    from transferlab.serve.http import Routes

    app = FastAPI()
    Routes(app, {}, ServeOptions(), lambda: True).register()
    routes = {(method, route.path) for route in app.routes for method in getattr(route, "methods", ())}
    for task in TASKS.values():
        for served in task.serves.values():
            for endpoint in served.endpoints:
                methods, path = endpoint.split()
                for method in methods.split("|"):
                    assert (method, path) in routes, f"{task.name}: {endpoint}"


def test_explain_and_corruptions_are_declared_once():
    import inspect

    from transferlab.registry import RUN_KINDS
    from transferlab.tasks.explain.subjects import SUBJECTS

    assert set(SUBJECTS) == {name for name, kind in RUN_KINDS.items() if "explain" in kind.accepted_by}
    for task in TASKS.values():
        evaluate = getattr(task.api(), "evaluate", None)
        takes = evaluate is not None and "corruptions" in inspect.signature(evaluate).parameters
        assert takes == (task.robustness is not None), task.name
