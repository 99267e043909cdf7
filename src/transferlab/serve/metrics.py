"""Prometheus metrics of the HTTP process (prometheus_client): requests, latency, batch sizes.

The default registry also carries the process collector (resident memory, CPU seconds, open
files) of the process that answers ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("transferlab_requests", "HTTP requests answered", ["model", "endpoint", "code"])
LATENCY = Histogram(
    "transferlab_request_seconds",
    "Time from request to response",
    ["model", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_REQUESTS = Histogram(
    "transferlab_batch_requests",
    "Requests per model call (dynamic batching)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
BATCH_IMAGES = Histogram(
    "transferlab_batch_images", "Images per model call", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)
IN_FLIGHT = Gauge("transferlab_requests_in_flight", "Requests being answered now")


def observe_batch(model: str, output: dict) -> None:
    """Worker outputs carry their batch's size on the first request of each batch only."""
    if "batch_requests" in output:
        BATCH_REQUESTS.labels(model).observe(output["batch_requests"])
        BATCH_IMAGES.labels(model).observe(output["batch_images"])
