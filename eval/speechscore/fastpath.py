"""A faster CPU inference copy of a model: every nn.Linear runs through oneDNN's linear
kernel (with an exact GELU that follows it fused in), instead of the BLAS matmul.

Why: on the AMD CPUs these evaluations run on, oneDNN's matmul is about 35% faster than
the BLAS torch calls for nn.Linear (MKL picks its slower code paths off Intel), and the
linear layers are most of a transformer's time. The model code itself is not touched:
`enhancer.models` stays the one definition; this swaps generic modules in a deep copy.

The copy is checked against the original on a short input before it is used; if the
kernel is missing (another torch build) or the outputs disagree beyond float rounding,
the original model is used as it is.
"""

import copy

import numpy as np

# Outputs of the two paths differ by float32 rounding only (about 3e-8 on outputs of
# size 0.2); anything larger means the kernel does something else, and is refused.
TOLERANCE = 1e-5
CHECK_SAMPLES = 8000


def _kernel():
    import torch

    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _linear_module(kernel, linear, activation: str):
    import torch

    class OneDnnLinear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weight", linear.weight.detach().clone())
            self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

        def forward(self, x):
            # "none" as GELU's algorithm is the exact (erf) GELU, as torch.nn.GELU() by default.
            return kernel(x, self.weight, self.bias, activation, [], "none" if activation == "gelu" else "")

    return OneDnnLinear()


def _convert(module, kernel) -> int:
    """Swap Linear (and Linear + exact GELU inside a Sequential) in place; returns how many."""
    import torch

    swapped = 0
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Sequential):
            items = list(child)
            for i, item in enumerate(items):
                follows_gelu = (i + 1 < len(items) and isinstance(items[i + 1], torch.nn.GELU)
                                and items[i + 1].approximate == "none")
                if isinstance(item, torch.nn.Linear) and follows_gelu:
                    child[i] = _linear_module(kernel, item, "gelu")
                    child[i + 1] = torch.nn.Identity()
                    swapped += 1
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, _linear_module(kernel, child, "none"))
            swapped += 1
        else:
            swapped += _convert(child, kernel)
    return swapped


def fast_inference_model(model):
    """(model to run, what was done): the oneDNN copy when it exists and agrees, else `model`."""
    import torch

    kernel = _kernel()
    if kernel is None:
        return model, "plain (no oneDNN linear kernel in this torch)"
    fast = copy.deepcopy(model).eval()
    try:
        swapped = _convert(fast, kernel)
        if not swapped:
            return model, "plain (no linear layers)"
        probe = torch.from_numpy(np.random.default_rng(0).standard_normal(CHECK_SAMPLES).astype(np.float32) * 0.1)
        with torch.inference_mode():
            expected, got = model(probe[None]), fast(probe[None])
        if got.shape != expected.shape or not torch.allclose(got, expected, rtol=0.0,
                                                             atol=TOLERANCE * (1.0 + float(expected.abs().max()))):
            return model, "plain (the oneDNN copy disagreed with the model)"
    except (RuntimeError, TypeError, ValueError) as exc:
        return model, f"plain (oneDNN linear failed: {type(exc).__name__})"
    return fast, f"onednn-linear ({swapped} linear layers)"
