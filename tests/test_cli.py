"""The installed `transferlab` command itself: entry point, fast help, error boundary."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import assert_user_error

EXE = Path(sys.executable).with_name("transferlab")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}, timeout=120
    )


def test_help_is_fast_and_lists_commands():
    _run("--help")  # warm the file cache
    start = time.perf_counter()
    result = _run("--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0
    for command in ("backbones", "predict", "data"):
        assert command in result.stdout
    assert elapsed < 1.5, f"--help took {elapsed:.2f}s"


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
