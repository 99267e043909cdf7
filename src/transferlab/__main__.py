"""``python -m transferlab`` (also what ``torchrun -m transferlab`` launches on each process)."""

from transferlab.cli.main import run

if __name__ == "__main__":
    run()
