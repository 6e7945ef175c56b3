"""The official `kaggle` CLI, pointed at an emulator on any port.

    KJOB_KAGGLE_ENDPOINT=http://127.0.0.1:PORT python -m kjob.emulator.kaggle_cli kernels list --mine

The official CLI reaches a local server only as `KAGGLE_API_ENVIRONMENT=LOCALHOST`, which
kagglesdk maps to http://localhost (port 80, which needs root). This starts the CLI's own
entry point (`kaggle.cli:main`, unchanged) with that one entry of kagglesdk's endpoint table
replaced by the emulator's URL; everything else the CLI does is its own. Needs the official
client installed: `pip install kaggle==2.2.4 six` (2.2.4 forgets to declare `six`).
"""

import os
import sys


def main() -> int:
    endpoint = os.environ.get("KJOB_KAGGLE_ENDPOINT", "").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        print("kjob: set KJOB_KAGGLE_ENDPOINT to the emulator's URL (kjob emulator prints it)", file=sys.stderr)
        return 2
    # Before the CLI is imported: `import kaggle` signs in, and its KaggleApi reads this at import.
    os.environ["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
    try:
        from kagglesdk import kaggle_env

        kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = endpoint
        sys.argv[0] = "kaggle"  # the CLI asks its program name whether it was run as the CLI
        from kaggle.cli import main as official_main
    except ImportError as exc:
        print(f"kjob: the official client is missing ({exc.name}): pip install kaggle==2.2.4 six", file=sys.stderr)
        return 2
    return official_main() or 0


if __name__ == "__main__":
    sys.exit(main())
