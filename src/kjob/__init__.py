"""kjob: build, run, fetch and evaluate Kaggle notebooks made from plain Python modules.

The library is usable on its own; `kjob.cli` is a thin click layer over it. Its entry points
are importable from here (`from kjob import find_workspace, push_kernel`), wherever their
modules live: docs/library.md lists them. They are imported on first use, not with
`import kjob`, so that `kjob --help` stays instant (httpx re-exports its public names the same
way, without the laziness).
"""

import importlib

__version__ = "0.1.0"

# Each public name -> the module that defines it. The only imports of the parts made from the
# shared ground, and made lazily: tests/test_layout.py allows them here and nowhere else.
_EXPORTS = {
    # the workspace
    "Workspace": "kjob.workspace",
    "find_workspace": "kjob.workspace",
    # building
    "KernelRecipe": "kjob.build.recipe",
    "load_recipe": "kjob.build.recipe",
    "BuildPlan": "kjob.build.plan",
    "plan_build": "kjob.build.plan",
    "build_kernel": "kjob.build.plan",
    # backends, and a run's life: push, watch, fetch
    "get_backend": "kjob.backends",
    "push_kernel": "kjob.lifecycle.push",
    "watch": "kjob.lifecycle.watch",
    "fetch_run": "kjob.lifecycle.fetch",
    # the ledger and its runs
    "Ledger": "kjob.runs.ledger",
    "Run": "kjob.runs.record",
    "RunStatus": "kjob.runs.record",
    "RunQuery": "kjob.runs.query",
    "select_runs": "kjob.runs.query",
    "Failure": "kjob.sandbox.execute_notebook",
    # campaigns
    "load_campaign": "kjob.campaigns.file",
    "Sweep": "kjob.campaigns.sweep",
    # errors
    "KjobError": "kjob.errors",
    "UsageError": "kjob.errors",
    "ConfigError": "kjob.errors",
    "ValidationError": "kjob.errors",
    "NotFoundError": "kjob.errors",
    "RunGone": "kjob.errors",
    "RunFailed": "kjob.errors",
    "LocalFileError": "kjob.errors",
    "BackendError": "kjob.errors",
    "NotServed": "kjob.errors",
    "PushedWithProblem": "kjob.errors",
    "NoRoom": "kjob.errors",
    "QuotaLow": "kjob.errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kjob' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
