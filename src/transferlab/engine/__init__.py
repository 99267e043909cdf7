"""The training engine shared by every task: devices (Lightning Fabric), the memory format and
precision chosen per device and task (``performance``), the run session (``session``: run folder,
checkpoints, metrics log, preemption), pickle-free checkpoints and RNG state."""
