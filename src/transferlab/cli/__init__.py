"""The ``transferlab`` command line (Typer + Rich); each command group is one module here."""
