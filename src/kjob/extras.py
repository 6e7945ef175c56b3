"""The optional parts of kjob and whether they are installed, asked without importing them.

The toolkit installs alone (`pip install kjob`); the speech example (the evaluator behind
`kjob demo`, `eval-local` and `compare`, and the libraries its training modules use) is the
`speech` extra. Its commands are hidden from `kjob --help` without it, and say in one line
how to install it when called.
"""

import importlib.util

from kjob.errors import ConfigError

SPEECH_MODULES = ("torch", "numpy", "soundfile", "soxr", "pesq", "pystoi", "speechscore")
SPEECH_INSTALL = "pip install 'kjob[speech]' (from a checkout: pip install '.[speech]')"


def missing(modules: tuple[str, ...]) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def speech_installed() -> bool:
    return not missing(SPEECH_MODULES)


def require_speech(command: str) -> None:
    absent = missing(SPEECH_MODULES)
    if absent:
        raise ConfigError(f"`kjob {command}` needs the speech extra ({', '.join(absent)} missing): {SPEECH_INSTALL}")
