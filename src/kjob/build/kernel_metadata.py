"""kernel-metadata.json: written from a recipe, checked by the rules Kaggle's client applies."""

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from kjob.build.recipe import KernelRecipe, load_recipe
from kjob.kaggle_platform import KaggleRef
from kjob.runs.record import parse_lane

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# A model source is owner/model/framework/variation[/N] (kaggle-cli docs/kernels_metadata.md), not owner/slug.
_MODEL_SOURCE = re.compile(r"[A-Za-z0-9][\w.-]*(?:/[A-Za-z0-9][\w.-]*){3}(?:/[0-9]+)?")


def slugify(title: str) -> str:
    """The slug Kaggle derives from a title (python-slugify's default for ASCII text)."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    text = text.lower()
    return _NON_ALNUM.sub("-", text).strip("-")


def kernel_metadata(recipe: KernelRecipe, owner: str, code_file: str) -> dict:
    gpu = recipe.accelerator == "gpu"
    return {
        "id": f"{owner}/{recipe.slug}",
        "title": recipe.title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": recipe.private,
        "enable_gpu": gpu,
        "enable_tpu": recipe.accelerator == "tpu",
        "enable_internet": recipe.internet,
        "machine_shape": recipe.machine_shape,
        "dataset_sources": list(recipe.dataset_sources),
        "kernel_sources": list(recipe.kernel_sources),
        "model_sources": list(recipe.model_sources),
        "competition_sources": list(recipe.competition_sources),
        "session_timeout_seconds": recipe.session_timeout,
        "keywords": [],
        **({"docker_image": recipe.docker_image} if recipe.docker_image else {}),
    }


def validate_kernel_metadata(meta: dict, folder: Path) -> list[str]:
    """Problems Kaggle's client or server would reject (or silently mishandle) at push time.

    Mirrors `KaggleApi.kernels_push` of the official client, and turns its warning about a
    title that does not slugify to the id into an error: such a kernel becomes unreachable.
    """
    problems = []
    title = meta.get("title") or ""
    if len(title) < 5:
        problems.append("title must be at least five characters")
    code_file = meta.get("code_file")
    if not code_file:
        problems.append("a code_file must be specified")
    elif not (folder / code_file).is_file():
        problems.append(f"code_file {code_file} not found in {folder.name}/")
    kernel_id = meta.get("id") or ""
    ref = KaggleRef.read(kernel_id, versioned=False)
    if ref is None:
        problems.append(f"id '{kernel_id}' must be 'owner/slug' (no version)")
    elif title and slugify(title) != ref.slug.lower():
        problems.append(
            f"title '{title}' slugifies to '{slugify(title)}', not to the id's slug '{ref.slug}'"
        )
    if meta.get("language") not in ("python", "r", "rmarkdown"):
        problems.append("language must be python, r or rmarkdown")
    if meta.get("kernel_type") not in ("script", "notebook"):
        problems.append("kernel_type must be script or notebook")
    for key in ("dataset_sources", "kernel_sources", "model_sources"):
        for source in meta.get(key, []):
            if not (_MODEL_SOURCE.fullmatch(source) if key == "model_sources" else KaggleRef.read(source)):
                problems.append(f"{key}: invalid source '{source}'")
    for key in ("is_private", "enable_gpu", "enable_tpu", "enable_internet"):
        if not isinstance(meta.get(key), bool):
            problems.append(f"{key} must be written explicitly as true or false")
    if meta.get("enable_gpu") and meta.get("machine_shape") in (None, "NvidiaTeslaP100"):
        problems.append(
            "enable_gpu without machine_shape NvidiaTeslaT4 gets a P100, which the current "
            "Kaggle image's torch cannot run"
        )
    return problems


# -- a campaign lane's own kernel (kjob.campaigns.lanes says why lanes have kernels of their own) --

@dataclass(frozen=True)
class LaneKernel:
    kernel: str  # the ledger's name for it, `r3-dpt@kd-1`
    slug: str  # Kaggle's, `r3-dpt-kd-1`
    title: str  # "R3 Dpt kd 1": slugifies to the slug


def lane_kernel(recipe, campaign: str, n: int) -> LaneKernel:
    title = f"{recipe.title} {campaign} {n}"
    return LaneKernel(f"{recipe.name}@{campaign}-{n}", slugify(title), title)


def kernel_slug(ws, kernel: str) -> str:
    lane = parse_lane(kernel)
    if lane is None:
        return load_recipe(ws, kernel).slug
    return lane_kernel(load_recipe(ws, lane[0]), lane[1], lane[2]).slug
