"""Every training task's options, declared once as dataclasses (defaults, help, choices): the
Python API takes them as keyword arguments and ``cli/options.py`` generates the flags from them.
Nothing here imports torch, so the CLI starts fast."""
