"""Where inputs, outputs and scratch space live, and which device to train on."""

import os
import tempfile

import torch


def input_root():
    return os.environ.get("KAGGLE_INPUT_DIR") or "/kaggle/input"


def working_root():
    path = os.environ.get("KAGGLE_WORKING_DIR") or "/kaggle/working"
    os.makedirs(path, exist_ok=True)
    return path


def _runtime_writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-")
        probe.close()
        return True
    except OSError:
        return False


_RUNTIME_SCRATCH = []


def scratch_root():
    """A writable directory for extracted archives and synthetic data.

    /kaggle/temp does not exist on every Kaggle image, and a local run may not
    be allowed to create it, so fall back to one temporary directory per process.
    """
    path = os.environ.get("KAGGLE_TEMP_DIR") or "/kaggle/temp"
    if _runtime_writable(path):
        return path
    if not _RUNTIME_SCRATCH:
        _RUNTIME_SCRATCH.append(tempfile.mkdtemp(prefix="enhancer-scratch-"))
    return _RUNTIME_SCRATCH[0]


def _runtime_listing(root, depth=3, limit=40):
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != "." and rel.count(os.sep) >= depth:
            dirnames[:] = []
            continue
        if rel != ".":
            found.append(rel)
        if len(found) >= limit:
            found.append("...")
            break
    return found


def find_dataset(source):
    """Directory of an attached Kaggle dataset given as "owner/slug" (or "slug").

    Kaggle mounted datasets at <input>/<slug> until 2026 and at
    <input>/datasets/<owner>/<slug> since, so both places are tried.
    """
    root = input_root()
    parts = [p for p in source.strip().strip("/").split("/") if p]
    if not parts:
        raise ValueError("empty dataset source %r; expected 'owner/slug'" % source)
    slug = parts[-1]
    candidates = [os.path.join(root, slug)]
    if len(parts) >= 2:
        candidates.append(os.path.join(root, "datasets", parts[-2], slug))
    candidates.append(os.path.join(root, "datasets", slug))
    for path in candidates:
        if os.path.isdir(path):
            return path
    if not os.path.isdir(root):
        listing = "the input root %s does not exist" % root
    else:
        listing = "under %s there is: %s" % (root, ", ".join(_runtime_listing(root)) or "nothing")
    raise FileNotFoundError(
        "dataset %r is not attached: looked for %s; %s. Add the dataset to the "
        "notebook's sources, or pass data_dir=... or synthetic=True."
        % (source, " and ".join(candidates), listing)
    )


def gpu_names():
    if not torch.cuda.is_available():
        return []
    try:
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:
        return []


def _runtime_arch_supported(capability, arch_list):
    """Whether a GPU of this compute capability can run this torch build's kernels.

    A cubin built for sm_XY runs on any X.Z with Z >= Y; PTX (compute_XY) is
    JIT-compiled for any later GPU. An empty list means the build did not say.
    """
    if not arch_list:
        return True
    major, minor = capability
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        digits = "".join(ch for ch in digits if ch.isdigit())
        if len(digits) < 2:
            continue
        a_major, a_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def _runtime_cuda_problem():
    """None when CUDA can run a kernel here, else a sentence saying why not."""
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no GPU attached, or a CPU-only torch build)"
    arch_list = []
    try:
        arch_list = list(torch.cuda.get_arch_list())
    except Exception:
        pass
    for i in range(torch.cuda.device_count()):
        cap = tuple(torch.cuda.get_device_capability(i))
        if not _runtime_arch_supported(cap, arch_list):
            return "GPU %d (%s) has compute capability sm_%d%d, which this torch build does " \
                   "not support (it has kernels for %s)" % (
                       i, torch.cuda.get_device_name(i), cap[0], cap[1], " ".join(arch_list))
    try:
        probe = torch.ones(1, device="cuda") + 1
        torch.cuda.synchronize()
        if float(probe.item()) != 2.0:
            return "a test kernel on the GPU returned a wrong result"
    except Exception as exc:
        return "a test kernel on the GPU failed: %s" % (str(exc).strip().splitlines() or [exc])[0]
    return None


def select_device(device="cuda"):
    """Print what hardware torch sees and return the torch.device to train on.

    device="cuda" fails at once when CUDA cannot run a kernel, so that a
    notebook given the wrong accelerator does not train for hours on CPU.
    """
    if device not in ("cuda", "auto", "cpu"):
        raise ValueError("device must be 'cuda', 'auto' or 'cpu', not %r" % (device,))
    print("torch %s, CUDA build %s, cuda available: %s"
          % (torch.__version__, torch.version.cuda, torch.cuda.is_available()), flush=True)
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            cap = torch.cuda.get_device_capability(i)
            print("GPU %d: %s, compute capability %d.%d"
                  % (i, torch.cuda.get_device_name(i), cap[0], cap[1]), flush=True)
    if device == "cpu":
        print("device: cpu (forced)", flush=True)
        return torch.device("cpu")
    problem = _runtime_cuda_problem()
    if problem is None:
        print("device: cuda:0", flush=True)
        return torch.device("cuda", 0)
    if device == "auto":
        print("device: cpu (CUDA unusable: %s)" % problem, flush=True)
        return torch.device("cpu")
    build = ("built for CUDA %s" % torch.version.cuda) if torch.version.cuda else "a CPU-only build"
    raise RuntimeError(
        "device='cuda' was requested but CUDA cannot be used: %s. Installed: torch %s, %s. "
        "On Kaggle, choose a supported GPU (machine shape NvidiaTeslaT4, or another GPU "
        "newer than the P100), or pass device='auto' or device='cpu' to run without a GPU."
        % (problem, torch.__version__, build)
    )
