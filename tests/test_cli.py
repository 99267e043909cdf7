"""The installed `transferlab` command itself: entry point, fast help, error boundary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import assert_user_error

EXE = Path(sys.executable).with_name("transferlab")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}, timeout=120
    )


def test_help_lists_commands():
    result = _run("--help")
    assert result.returncode == 0
    for command in ("backbones", "predict", "data"):
        assert command in result.stdout


def test_square_brackets_in_user_text_print_as_written(tmp_path, cli, monkeypatch):
    """Rich markup must not eat user text: a file named with brackets, and the extra in a hint."""
    broken = tmp_path / "photos[2024].zip"
    broken.write_bytes(b"not a zip")
    code, _, err = cli("data", broken)
    assert code == 2 and "photos[2024].zip" in err, err
    import transferlab.data
    from transferlab.errors import UsageError

    def needs_extra(*args, **kwargs):
        raise UsageError("[bold]ONNX[/] export needs onnx", "pip install 'transferlab[export]'")

    monkeypatch.setattr(transferlab.data, "load_data", needs_extra)
    assert_user_error(cli("data", "digits"), "[bold]ONNX[/] export", "pip install 'transferlab[export]'")


def test_help_does_not_import_torch():
    code = "import sys; from transferlab.cli.main import app; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_user_error_through_the_real_entry_point(tmp_path):
    result = _run("data", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "\nhint:" in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_exit_2(cli):
    code, _, err = cli("no-such-command")
    assert code == 2 and "No such command" in err
    code, _, err = cli("predict", "x.png", "--topk", "many")
    assert code == 2 and "--topk" in err


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("transferlab ")


def test_unexpected_errors_are_one_line_with_a_hint(cli, monkeypatch):
    from transferlab.tasks import predict

    def boom(*args, **kwargs):
        raise ZeroDivisionError("kaboom")

    monkeypatch.setattr(predict, "predict", boom)
    code, _, err = cli("predict", "x.png", "-m", "tf_efficientnet_lite0")
    assert code == 1 and "internal error: ZeroDivisionError: kaboom" in err and "TRANSFERLAB_DEBUG" in err
    assert "Traceback" not in err


def test_errors_are_two_lines(cli, tmp_path):
    assert_user_error(cli("predict", tmp_path / "none.png", "-m", "tf_efficientnet_lite0"), "does not exist")


def test_every_command_has_help_with_an_example(cli):
    from transferlab.cli.main import COMMANDS

    for name in COMMANDS:
        code, out, _ = cli(*name.split(), "--help")
        assert code == 0 and "Example:" in out and f"transferlab {name}" in out, name


def test_demo_with_bad_data_is_one_clear_error(cli, tmp_path):
    assert_user_error(cli("demo", "--data", tmp_path / "missing", "--out", tmp_path / "o"), "is not a folder")
