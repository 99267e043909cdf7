"""The training engine shared by every task, written once:

- ``run``: the recipe contract (:class:`~transferlab.engine.run.Recipe`) and ``run()``, which
  owns everything around a task's loop (checkpoint to resume, options, Fabric, run folder, seed,
  the session, the rank-0 finish);
- ``session``: the run folder and its lock, atomic rotated checkpoints, ``metrics.csv``,
  progress, divergence stops, preemption and the stop watchdog;
- ``batches``: the one batch drawer, (seed, step, rank, world size) -> this process's share;
- ``options``: ``TrainOptions`` (``EpochOptions``: step and time budgets), ``option()`` fields (help,
  choices, resumable);
- ``fabric``: Lightning Fabric set-up (``fabric_for`` the options), ``setup_trained``, ranks
  (``is_main_process``);
- ``performance``: memory format and precision per device and task, ``unwrap`` (the module inside
  Fabric's and torch.compile's wrappers);
- ``checkpoint``, ``rng``: pickle-free checkpoints and every random state.
"""
