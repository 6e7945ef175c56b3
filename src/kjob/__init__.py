"""kjob: build, run, fetch and evaluate Kaggle notebooks made from plain Python modules.

The library is usable on its own; `kjob.cli` is a thin click layer over it.
"""

__version__ = "0.1.0"
