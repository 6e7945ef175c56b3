"""What a run on this side of Kaggle sees in /kaggle/input: each dataset source's folder, as the
workspace maps it, under Kaggle's layouts. One check for every backend that mounts folders
(local, Ray): they can mount dataset sources only."""

from collections.abc import Callable

from kjob.errors import ConfigError
from kjob.kaggle_platform import KaggleRef, input_layouts


def dataset_mounts(recipe, backend: str, folder_of: Callable[[str], object]) -> dict:
    """{path in /kaggle/input: folder} for the recipe's dataset sources; `folder_of` takes a
    source's `owner/slug` (its version dropped: a local folder has one) and answers its folder,
    or raises ConfigError saying where to map it. ConfigError for any other kind of source."""
    unsupported = [*recipe.kernel_sources, *recipe.model_sources, *recipe.competition_sources]
    if unsupported:
        raise ConfigError(f"the {backend} backend can only mount dataset sources, not {', '.join(unsupported)}")
    mounts = {}
    for source in recipe.dataset_sources:
        key = KaggleRef.parse(source).key
        folder = folder_of(key)
        mounts.update(dict.fromkeys(input_layouts("dataset", key), folder))
    return mounts
