"""Registry of the enhancement models, so a checkpoint can name and rebuild one."""

from enhancer.crn import CRN
from enhancer.dpt import DPT

MODELS = {"crn": CRN, "dpt": DPT}


def build_model(name, config=None):
    """A model from its registry name and the `config` dict it exposed when saved."""
    if name not in MODELS:
        raise ValueError("unknown model %r; choose one of %s" % (name, ", ".join(sorted(MODELS))))
    return MODELS[name](**dict(config or {}))


def count_parameters(model):
    return int(sum(p.numel() for p in model.parameters()))
