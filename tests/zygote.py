"""`transferlab ARGS` as separate processes without paying the imports each time.

A test that kills a run, stops it with a signal, or starts two workers needs the CLI in a process of
its own. A fresh interpreter spends about 10 s of a 2-core machine importing torch, torchvision (which
loads torch._dynamo), timm and Lightning Fabric (which imports all of torchmetrics) before the run's
first line: most of a small test run's time, paid some thirty times a suite. Here one interpreter per
test worker imports them once and never runs a tensor operation; every run is a ``fork`` of it, with
the caller's arguments, environment, working directory and output files, and then exits. A forked
child is a real process (its own pid, signals, exit status, child processes: Fabric's second rank is
still a fresh interpreter); only its start is shorter.

Why a separate interpreter and not a fork of the test process: the test process has run tensor
operations (a GNU OpenMP thread pool does not survive a fork), holds threads of earlier tests, and
records warnings and output for pytest; the zygote has none of that. No library does this for a
test suite (pytest-xdist forks nothing; multiprocessing's forkserver serves Python callables, not a
command line with its own file descriptors and exit status), so it is written here.

Protocol: one JSON request a line on stdin (args, env, cwd, stdout, stderr, status paths); the zygote
answers with the child's pid on stdout and, when the child ends, writes its exit status (negative:
the signal that ended it, as ``subprocess`` reports it) to the status file.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("transferlab"))
#: What a CLI run imports before its first line: loaded once, here.
PRELOAD = ("torch", "torchvision", "timm", "lightning_fabric", "transferlab.cli.main", "transferlab.engine.session",
           "transferlab.tasks.classify", "transferlab.tasks.segment", "transferlab.tasks.adapt",
           "transferlab.tasks.autoencoder", "transferlab.tasks.gan", "transferlab.tune")  # fmt: skip


def _status_of(wait_status: int) -> int:
    return -os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else os.WEXITSTATUS(wait_status)


def _reap(statuses: dict[int, str]) -> None:
    """Write the exit status of every child that has ended (atomically: a reader sees all or nothing)."""
    while statuses:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        path = statuses.pop(pid, None)
        if path:
            Path(f"{path}.tmp").write_text(str(_status_of(wait_status)))
            os.replace(f"{path}.tmp", path)


def _child(request: dict[str, Any]) -> None:
    """Become ``transferlab ARGS`` with the request's environment and files; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own process group: a signal to the test's group does not reach it
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = out if request["stderr"] is None else os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # the process's own streams, open to its end
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.argv = [EXE, *request["args"]]  # what Fabric's launcher reruns for the other ranks
        import __main__

        __main__.__spec__ = None  # so it reruns ``python EXE ARGS``, not this module
        from transferlab.cli.main import main

        code = main(request["args"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # a child must end here, whatever happened
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def serve() -> None:
    """The zygote's loop: load, say ready, then fork one child a request until stdin closes."""
    for name in PRELOAD:
        __import__(name)
    print("ready", flush=True)
    statuses: dict[int, str] = {}
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0.05)
        _reap(statuses)
        if not readable:
            continue
        line = sys.stdin.readline()
        if not line:
            return
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        statuses[pid] = request["status"]
        print(pid, flush=True)


class Zygote:
    """The test worker's handle on its zygote (started on first use, stopped at exit)."""

    def __init__(self, fresh: bool = False) -> None:
        self.folder, self.count, self.proc = Path(tempfile.mkdtemp(prefix="zygote-")), 0, None
        if fresh:  # every process a fresh interpreter, as a shell starts it
            return
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=Path(__file__).parent)  # fmt: skip
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the zygote did not start")

    def start(self, args: list[str], env: dict[str, str], cwd: Path, merge_stderr: bool) -> CliProcess:
        self.count += 1
        base = self.folder / str(self.count)
        files = {"stdout": f"{base}.out", "stderr": None if merge_stderr else f"{base}.err", "status": f"{base}.status"}
        args = [str(a) for a in args]
        if self.proc is None:
            out = open(files["stdout"], "w")  # noqa: SIM115 (the child's; closed here once it has it)
            err = subprocess.STDOUT if merge_stderr else open(files["stderr"], "w")  # noqa: SIM115
            fresh = subprocess.Popen([EXE, *args], env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            for stream in (out, err):
                if stream is not subprocess.STDOUT:
                    stream.close()
            return CliProcess(fresh.pid, files, fresh)
        request = {"args": args, "env": env, "cwd": str(cwd), **files}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return CliProcess(int(self.proc.stdout.readline()), files)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)


def _read(path: str | None) -> str:
    """A child's output file as far as it is written ("" before the child has opened it)."""
    return Path(path).read_text(errors="replace") if path and Path(path).is_file() else ""


class CliProcess:
    """A started ``transferlab`` process, with the part of ``subprocess.Popen`` the tests use; its
    output goes to files, read at its end or followed while it runs (:meth:`wait_for`)."""

    def __init__(self, pid: int, files: dict[str, str | None], fresh: subprocess.Popen | None = None) -> None:
        self.pid, self.files, self.fresh, self.returncode = pid, files, fresh, None

    def poll(self) -> int | None:
        if self.returncode is None:
            if self.fresh is not None:
                self.returncode = self.fresh.poll()
            elif (status := Path(self.files["status"])).is_file():
                self.returncode = int(status.read_text())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(EXE, timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def output(self) -> tuple[str, str]:
        """What it has written so far to stdout and to stderr (stdout alone when they were merged)."""
        return _read(self.files["stdout"]), _read(self.files["stderr"])

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.output()

    def wait_for(self, text: str, timeout: float = 120) -> bool:
        """Wait until its stderr (or merged output) holds ``text``; False if it ended or time ran out first."""
        deadline = time.monotonic() + timeout
        while True:
            ended = self.poll() is not None  # asked first: what it wrote before it ended is read below
            if text in "".join(self.output()):
                return True
            if ended or time.monotonic() > deadline:
                return False
            time.sleep(0.02)


_zygote: Zygote | None = None


def start_cli(args: list[Any], env: dict[str, str] | None = None, merge_stderr: bool = False) -> CliProcess:
    """``transferlab ARGS`` started as a process of its own, from this worker's zygote (a fresh
    interpreter instead with ``TRANSFERLAB_TEST_FRESH_PROCESSES=1``, to compare or debug)."""
    global _zygote
    env = dict(os.environ if env is None else env)
    if _zygote is None:
        _zygote = Zygote(fresh=os.environ.get("TRANSFERLAB_TEST_FRESH_PROCESSES") == "1")
        atexit.register(_zygote.close)
    return _zygote.start(list(args), env, Path.cwd(), merge_stderr)


def run_cli(args: list[Any], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``transferlab ARGS`` to its end in a process of its own (``subprocess.run`` with captured text)."""
    process = start_cli(args, env)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess([EXE, *map(str, args)], process.returncode, out, err)


if __name__ == "__main__":
    serve()
