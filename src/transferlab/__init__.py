"""transferlab: transfer learning on images, offline-first.

Heavy modules (torch, timm) are imported only when used, so that ``transferlab --help`` and
``import transferlab`` stay fast.
"""

__version__ = "0.1.0"
