"""Kaggle's platform facts, each with its source: the image's modules, how a kernel or dataset is
named (`owner/slug[/N]`) and where its sources are mounted, the accelerators, the limits.

Nothing here talks to Kaggle; every number a check uses is written once, here.

## The image: what Kaggle's Python image provides, by import name, and what a recipe's `pip` list adds.

Source: Kaggle's image is built from github.com/Kaggle/docker-python (read at commit 78aaa43f,
August 2026). Its Dockerfile.tmpl starts FROM Colab's runtime image (numpy, pandas, torch,
torchvision, torchaudio, transformers, timm, librosa, opencv, ...), then installs
kaggle_requirements.txt on top (catboost, optuna, pytorch-lightning, datasets, kornia, ...);
its tests/ folder imports each of the packages it promises (test_timm.py, test_wandb.py,
test_albumentations.py, ...). Listed here: the ones a training notebook commonly imports.
One is not named in that repository: `lightning` (Lightning 2's own package; the image
installs pytorch-lightning), kept as a common import this source cannot confirm; a recipe relying
on it, or on any particular version, lists it under `pip`. The image changes: a module
missing here goes in the workspace's `target_modules`.
"""

import re
from dataclasses import dataclass

KAGGLE_IMAGE_MODULES = frozenset(
    """
    numpy scipy pandas polars pyarrow sklearn statsmodels sympy numba joblib tqdm yaml requests
    h5py psutil py7zr IPython ipywidgets matplotlib seaborn plotly bokeh PIL cv2 skimage imageio
    torch torchvision torchaudio torchmetrics torchinfo torchtune torchcodec lightning
    pytorch_lightning ignite timm kornia albumentations einops safetensors accelerate
    transformers tokenizers datasets huggingface_hub sentencepiece peft diffusers
    sentence_transformers onnx tensorflow keras tensorflow_hub tensorflow_probability
    tensorflow_datasets tensorflow_text keras_cv keras_nlp keras_tuner kerastuner jax optax flax
    xgboost lightgbm catboost optuna hyperopt bayes_opt shap lime category_encoders tsfresh
    prophet h2o wandb kaggle kagglehub kagglesdk kaggle_secrets learntools librosa soundfile pydub nltk spacy
    gensim fasttext jieba emoji easyocr pytesseract networkx igraph shapely fiona cartopy
    libpysal dipy pydicom SimpleITK openslide vtk Crypto boto3 papermill click typer
    """.split()
)
# click is named in none of those files: it is there as a dependency of packages they install (wandb,
# nltk, dask, papermill all require it), which is how a click script's `import click` finds it.
# typer likewise: spacy and its weasel require it (typer-slim, which installs the `typer` module).

# A requirement as `pip install` takes it from PyPI: a name, optional [extras] and version
# specifiers. No URLs, paths or options: a string starting with '-' would become a pip flag.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_SPEC = r"(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
REQUIREMENT_RE = re.compile(rf"({_NAME})\s*(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?\s*(?:{_SPEC}(?:\s*,\s*{_SPEC})*)?")

# Distributions whose import name is not their project name (keys normalised as PEP 503 does).
# Any other distribution is imported under its name with '-' and '.' as '_' (timm, wandb,
# segmentation-models-pytorch); a recipe names anything else in `pip_modules`.
PIP_IMPORT_NAMES = {
    "scikit-learn": ("sklearn",), "scikit-image": ("skimage",), "pillow": ("PIL",),
    "opencv-python": ("cv2",), "opencv-python-headless": ("cv2",), "opencv-contrib-python": ("cv2",),
    "opencv-contrib-python-headless": ("cv2",), "pyyaml": ("yaml",), "beautifulsoup4": ("bs4",),
    "pytorch-lightning": ("pytorch_lightning",), "lightning": ("lightning",),
    "pytorch-ignite": ("ignite",), "python-dateutil": ("dateutil",), "protobuf": ("google",),
    "pycryptodome": ("Crypto",), "faiss-cpu": ("faiss",), "faiss-gpu": ("faiss",),
    "umap-learn": ("umap",), "tensorflow-cpu": ("tensorflow",), "tensorflow-gpu": ("tensorflow",),
    "keras-tuner": ("keras_tuner", "kerastuner"), "bayesian-optimization": ("bayes_opt",),
    "pymupdf": ("fitz",), "openai-whisper": ("whisper",), "attrs": ("attr", "attrs"),
    "mmcv-full": ("mmcv",), "hydra-core": ("hydra",), "google-genai": ("google",),
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution a requirement string names ('timm' for 'timm[x]>=0.9,<1')."""
    match = REQUIREMENT_RE.fullmatch(requirement.strip())
    return match.group(1) if match else requirement


def pip_import_names(requirements) -> frozenset[str]:
    """The top-level modules the recipe's `pip` requirements make importable."""
    names = set()
    for requirement in requirements:
        key = normalized(requirement_name(requirement))
        names.update(PIP_IMPORT_NAMES.get(key, (key.replace("-", "_"),)))
    return frozenset(names)


# -- references and where their sources are mounted ---------------------------------------------
# Kaggle names a kernel and a dataset `owner/slug`; a data source may add `/N`, one version of it
# (kernel-metadata.json's `dataset_sources`, `kjob dataset push --as`, the emulator's paths).
REF_RE = re.compile(r"([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)(?:/(\d+))?")


@dataclass(frozen=True)
class KaggleRef:
    owner: str
    slug: str
    version: int | None = None  # a source pinned to one version: "owner/slug/3"

    @classmethod
    def parse(cls, text: str) -> "KaggleRef":
        """The pieces of `text` as written, for a name already checked (or Kaggle's own): a
        missing slug is "", a version that is not a number is None."""
        owner, _, rest = text.strip().partition("/")
        slug, _, number = rest.partition("/")
        return cls(owner, slug, int(number) if number.isdecimal() else None)

    @classmethod
    def read(cls, text, versioned: bool = True) -> "KaggleRef | None":
        """`owner/slug` (or, if `versioned`, `owner/slug/N`) written in the characters Kaggle
        names take; None for anything else."""
        match = REF_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None or (match[3] and not versioned):
            return None
        return cls(match[1], match[2], int(match[3]) if match[3] else None)

    @property
    def key(self) -> str:
        """`owner/slug`, without the version: what a dataset folder is mapped under."""
        return f"{self.owner}/{self.slug}"

    def __str__(self) -> str:
        return self.key + (f"/{self.version}" if self.version else "")


def input_layouts(kind: str, source: str) -> list[str]:
    """Where Kaggle mounts a source under /kaggle/input: the 2026 layout, then the older one
    (`<slug>`), which notebooks written before it still read. `kind` is dataset, kernel,
    competition or model (`owner/model/framework/instance[/N]`)."""
    if kind in ("dataset", "kernel"):
        ref = KaggleRef.parse(source)
        return [f"{'datasets' if kind == 'dataset' else 'notebooks'}/{ref.owner}/{ref.slug}", ref.slug]
    parts = source.split("/")
    if kind == "competition":
        return [f"competitions/{parts[0]}", parts[0]]
    return ["models/" + "/".join(parts[:4] + (parts[4:5] or ["1"]))]


# -- accelerators -------------------------------------------------------------------------------
# Source: kaggle-cli docs/kernels.md ("Accelerators available as of Feb 2026", read at commit
# a430f0bd); kaggle-cli PR #1198 (Sep 2026) names NvidiaTeslaT4 ("GPU T4 x2", the default GPU) and
# TpuV5E8 ("TPU v5e-8") as the shapes behind the editor's choices. kagglesdk's docstring still
# lists Tpu1VmV38 and the older TpuV38 (TPU v3-8): accepted, but not what the editor offers.
# Some shapes are for particular competitions or Kaggle's admins only (the same docs page).
GPU_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaP100", "NvidiaTeslaT4Highmem", "NvidiaTeslaA100", "NvidiaL4",
              "NvidiaL4X1", "NvidiaH100", "NvidiaRtxPro6000")
TPU_SHAPES = ("TpuV5E8", "TpuV6E8", "Tpu1VmV38", "TpuV38")
DEFAULT_MACHINE_SHAPE = {"gpu": "NvidiaTeslaT4", "tpu": "TpuV5E8", "none": None}


def shape_accelerator(shape: str | None) -> str | None:
    """"gpu", "tpu", or None for no shape (CPU); "unknown" for a name not in Kaggle's list."""
    if not shape or shape == "None":  # "None": no accelerator, as the emulator takes it too (assumed)
        return None
    if shape in GPU_SHAPES:
        return "gpu"
    if shape in TPU_SHAPES:
        return "tpu"
    return "unknown"


# -- limits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    value: int
    source: str  # where the number comes from, for the docs and for a reader of a refusal


HOUR = 3600
# Kaggle's docs (kaggle.com/docs/notebooks, "Technical specifications"): 12 hours per session
# for CPU and GPU notebooks, 9 hours for TPU ones (as issue 22 states them; the page was not
# re-read for this list).
SESSION_LIMIT = {
    "none": Limit(12 * HOUR, "kaggle.com/docs/notebooks: 12 hours for CPU and GPU sessions"),
    "gpu": Limit(12 * HOUR, "kaggle.com/docs/notebooks: 12 hours for CPU and GPU sessions"),
    "tpu": Limit(9 * HOUR, "kaggle.com/docs/notebooks: 9 hours for TPU sessions"),
}
# SaveKernel answers HTTP 400 "The kernel source must be less than 1 megabytes in size" (reported
# in issue 22 from a stand-in answering as Kaggle does). Whether a megabyte is 10**6 or 2**20
# bytes is not said: kjob takes the smaller, so that nothing it sends is refused for size.
SOURCE_LIMIT = Limit(1_000_000, 'SaveKernel: HTTP 400 "The kernel source must be less than 1 megabytes in size"')
# /kaggle/working keeps at most 20 GB (kaggle.com/docs/notebooks; kaggle-api notes, point 8).
OUTPUT_LIMIT = Limit(20 * 10**9, "kaggle.com/docs/notebooks: /kaggle/working holds at most 20 GB")
# Not a limit on writing: Kaggle lists (and so serves for download) the first 500 output files
# only, said by Kaggle's staff in kaggle-cli #664 ("Downloading output files is limited to the
# first 500 currently") and reported in #463 and #665.
OUTPUT_FILES_LISTED = Limit(500, "kaggle-cli #463, #664, #665: only the first 500 output files are listed")
# Unfinished batch GPU sessions per account: a third push is refused (HTTP 200, `error` "Maximum batch
# GPU session count of 2 reached.", quoted in adapter-hub/playground PR #4, 2022; it was 4 in 2019,
# kaggle-cli #185). Checked by kjob before a GPU push; the emulator's default.
GPU_SESSIONS = Limit(2, 'SaveKernel: "Maximum batch GPU session count of 2 reached." (adapter-hub/playground PR #4)')

# -- Kaggle's wording of a failed session ---------------------------------------------------------
# The message of a session that ran out of memory (issue 22, as Kaggle's editor and status show it).
OUT_OF_MEMORY_MESSAGE = "Your notebook tried to allocate more memory than is available. It has restarted."
NO_SPACE_MESSAGE = "No space left on device"  # ENOSPC's text, as Python and the shell print it


def output_warnings(files: list[tuple[str, int]]) -> list[str]:
    """One line per Kaggle output limit that outputs of these (name, bytes) would meet; for the
    smoke run, whose outputs a full run's can only outgrow."""
    warnings = []
    total = sum(size for _, size in files)
    if total >= OUTPUT_LIMIT.value:
        warnings.append(f"the outputs take {total / 10**9:.1f} GB, and Kaggle's /kaggle/working holds at most "
                        f"{OUTPUT_LIMIT.value // 10**9} GB: keep fewer or smaller files (the best checkpoint only), "
                        "scratch in /kaggle/temp")
    if len(files) > OUTPUT_FILES_LISTED.value:
        warnings.append(f"the run writes {len(files)} output files, and Kaggle lists only the first "
                        f"{OUTPUT_FILES_LISTED.value} (kaggle-cli #463, #664): the rest could not be fetched; "
                        "pack them into one archive (zip or tar) in /kaggle/working")
    return warnings
