"""The parameters a run executes with, resolved once and handed to every backend.

Order, lowest first: the recipe's defaults < the workspace's parameters for the backend
(`[tool.kjob.<backend>.parameters]`, e.g. `device = "cpu"` for local runs) < `-p`. A
workspace parameter applies to every recipe that declares it and is skipped by the others;
it is typed by the recipe's default like `-p`. What this returns is what the notebook's
parameters cell holds, what the ledger records and what `kjob runs` shows.
"""

from kjob.errors import ConfigError
from kjob.credentials import find_leaks
from kjob.build.recipe import KernelRecipe, ParamValue, coerce_value


def resolve_parameters(ws, recipe: KernelRecipe, backend: str, overrides: dict[str, ParamValue] | None = None) -> dict:
    """`recipe`'s own defaults (not yet overridden) with the workspace's and then `overrides` over them."""
    effective = dict(recipe.parameters)
    where = f"[tool.kjob.{backend}.parameters]"
    for key, value in ws.config.backend_parameters.get(backend, {}).items():
        if key in recipe.parameters:
            # The build scanned the recipe and -p; this value reaches the notebook only now.
            for leak in find_leaks(f"{key} = {value!r}")[:1]:
                raise ConfigError(f"{where} {key}: looks like {leak.what} ({leak.masked}); never put "
                                  "credentials in parameters")
            effective[key] = coerce_value(key, value, recipe.parameters[key], where=where)
    effective.update(overrides or {})
    return effective
