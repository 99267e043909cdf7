"""The options of ``transferlab serve``, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import option
from transferlab.errors import UsageError

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds to
RUNTIMES = ("torch", "onnx", "onnx-int8")


@dataclass
class ServeOptions:
    host: str = option("127.0.0.1", "127.0.0.1 (this machine), 0.0.0.0 or :: (every interface).", choices=HOSTS)
    port: int = option(8000, "TCP port (1024..65535).", flags=("--port", "-p"))
    workers: int = option(1, "Model worker processes per model and device.")
    max_batch_size: int = option(8, "Requests a classifier answers in one call (1 = no batching).")
    batch_timeout_ms: float = option(5.0, "How long a worker waits to fill a batch.")
    accelerator: str = option("auto", "auto, cpu, cuda or mps.", choices=("auto", "cpu", "cuda", "gpu", "mps"))
    runtime: str = option(
        "torch", "Classifiers: torch; onnx (onnxruntime, exported once); onnx-int8 (what `export --quantize int8` "
        "made). Other kinds run in torch.", choices=RUNTIMES,
    )  # fmt: skip
    token: str | None = option(None, None)  # the CLI reads it from --token or TRANSFERLAB_TOKEN
    max_upload_mb: float = option(20.0, "Largest request body, in MB.")
    max_images: int = option(64, "Most images per request (and GAN samples).")
    timeout: float = option(60.0, None)  # seconds a request may wait for its model

    def check(self) -> None:
        if self.host not in HOSTS:
            raise UsageError(f"--host {self.host} cannot be bound by the server", f"use one of: {', '.join(HOSTS)}")
        if not 1024 <= self.port <= 65535:
            raise UsageError(f"--port {self.port} is outside 1024..65535", "e.g. --port 8000")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"unknown --runtime {self.runtime!r}", f"use one of: {', '.join(RUNTIMES)}")
        if self.accelerator not in ("auto", "cpu", "cuda", "gpu", "mps"):
            raise UsageError(f"unknown --accelerator {self.accelerator!r}", "use auto, cpu, cuda or mps")
        if min(self.workers, self.max_batch_size, self.max_images) < 1 or self.batch_timeout_ms < 0:
            raise UsageError("--workers, --max-batch-size and --max-images must be at least 1", "e.g. --workers 1")
        if self.max_upload_mb <= 0:
            raise UsageError("--max-upload-mb must be positive", "e.g. --max-upload-mb 20")
