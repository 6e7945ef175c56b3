"""What Kaggle's Python image provides, by import name, and what a recipe's `pip` list adds.

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
    prophet h2o wandb kaggle kagglehub kagglesdk learntools librosa soundfile pydub nltk spacy
    gensim fasttext jieba emoji easyocr pytesseract networkx igraph shapely fiona cartopy
    libpysal dipy pydicom SimpleITK openslide vtk Crypto boto3 papermill
    """.split()
)

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
