"""Backends: where a built kernel runs. One interface (`base.Backend`), several implementations.

A plain dict is the registry; an implementation's module is imported only when used, so the
CLI's start-up never pays for an SDK it does not need.
"""

import importlib

from kjob.errors import UsageError
from kjob.workspace import BACKEND_NAMES

BACKENDS = {
    "local": "kjob.backends.local:LocalBackend",
    "kaggle": "kjob.backends.kaggle:KaggleBackend",
    "ray": "kjob.backends.ray:RayBackend",
}
assert tuple(BACKENDS) == BACKEND_NAMES  # one list of names, kept by the workspace


def get_backend(ws, name: str):
    if name not in BACKENDS:
        raise UsageError(f"unknown backend '{name}' (known: {', '.join(BACKENDS)})")
    module_name, _, class_name = BACKENDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise UsageError(f"the {name} backend is not available in this version of kjob") from None
        raise
    return getattr(module, class_name)(ws)
