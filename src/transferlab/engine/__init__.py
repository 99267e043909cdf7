"""The training engine shared by every task: devices and precision (Lightning Fabric),
pickle-free checkpoints, RNG state, learning-rate schedules and the live progress display."""
