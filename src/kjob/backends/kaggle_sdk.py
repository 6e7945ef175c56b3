"""kagglesdk without its package `__init__`, which imports the client of every Kaggle service
(about 0.5 s, a quarter of fetching a 1 GiB file); kjob needs only the kernels service.

`light()` registers the package's module object without running `__init__`, so that
`import kagglesdk.kernels...` loads just what it names. It changes nothing when kagglesdk is
already imported, and nothing kjob uses lives in that `__init__` (it only re-exports).
"""

import importlib.util
import sys


def light() -> None:
    if "kagglesdk" in sys.modules:
        return
    spec = importlib.util.find_spec("kagglesdk")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the import that follows says so
    sys.modules["kagglesdk"] = importlib.util.module_from_spec(spec)
