"""Live training displays (Rich): epochs and batches with loss, accuracy and ETA; or steps with a note."""

from __future__ import annotations

from typing import Any

from transferlab import progress as progress_settings


class TrainingProgress:
    def __init__(self, epochs: int, batches: int, title: str, start_epoch: int = 0, enabled: bool = True) -> None:
        self.epochs, self.batches, self.title = epochs, batches, title
        self.start_epoch = start_epoch
        self.enabled = enabled and progress_settings.enabled()
        self._bar: Any = None

    def __enter__(self) -> TrainingProgress:
        if not self.enabled:
            return self
        from rich.progress import TextColumn

        self._bar = progress_settings.make_progress(TextColumn("{task.fields[info]}"))
        self._bar.__enter__()
        self._epochs = self._bar.add_task(
            f"{self.title} epochs", total=self.epochs, completed=self.start_epoch, info=""
        )
        self._steps = self._bar.add_task("  batches", total=self.batches, info="")
        return self

    def advance(self, loss: float, acc: float) -> None:
        if self._bar is not None:
            self._bar.update(self._steps, advance=1, info=f"loss {loss:.3f} acc {acc:.1%}")

    def end_epoch(self, val_acc: float | None, best: float) -> None:
        if self._bar is not None:
            latest = "" if val_acc is None else f"val acc {val_acc:.1%} "
            info = f"{latest}(best {max(best, 0):.1%})"
            self._bar.update(self._epochs, advance=1, info=info)
            self._bar.reset(self._steps, total=self.batches, info="")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


class StepProgress:
    """One bar over training steps, with ETA and a short note (losses); silent when quiet."""

    def __init__(self, total: int, done: int, title: str) -> None:
        self.total, self.done, self.title = total, done, title
        self._bar: Any = None

    def __enter__(self) -> StepProgress:
        if progress_settings.enabled():
            from rich.progress import TextColumn

            self._bar = progress_settings.make_progress(TextColumn("{task.fields[info]}"))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title, total=self.total, completed=self.done, info="")
        return self

    def advance(self, info: str | None = None, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, **({"info": info} if info is not None else {}))

    def note(self, info: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, info=info)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
