"""The speech example's own code (`src/enhancer/`), which the evaluator uses rather than
declaring it again: its models (model.py) and how it pairs noisy and clean files
(discovery.py). It is the project's code, not something kjob installs: imported as it is when
importable, else from the workspace's source folder."""

import importlib
import sys

from kjob.errors import NotFoundError


def enhancer_module(name: str, missing: str):
    """The module `enhancer.<name>`; NotFoundError with `missing` (which may name `{source}`, the
    workspace's source folder) when neither the path nor the workspace has it."""
    try:
        return importlib.import_module(f"enhancer.{name}")
    except ImportError:
        from kjob.workspace import find_workspace

        source = find_workspace().paths.src  # a ConfigError outside a workspace says so in one line
        if not (source / "enhancer" / f"{name}.py").is_file():
            raise NotFoundError(missing.format(source=source)) from None
        sys.path.insert(0, str(source))
        return importlib.import_module(f"enhancer.{name}")
