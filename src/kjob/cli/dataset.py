"""`kjob dataset push`: a local folder as a Kaggle dataset, or as its next version (kjob.backends.kaggle_upload)."""

import click

EXIT_NOT_READY = 6  # as for a run that has not finished (README's exit codes)


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


@click.group("dataset")
def dataset():
    """Kaggle datasets: upload a local folder as a dataset that kernels can read."""


@dataset.command("push")
@click.argument("folder", type=click.Path())
@click.option("--as", "target", required=True, metavar="OWNER/SLUG",
              help="The dataset: made if it does not exist, else given a new version.")
@click.option("-m", "--message", default=None, help="The new version's notes (default: 'kjob dataset push').")
@click.option("--public", is_flag=True, help="Make a new dataset public (default: private); an existing one "
                                             "keeps its visibility.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for Kaggle to process the upload.")
@click.option("--include-secrets", is_flag=True, help="Upload credential files found in FOLDER (kaggle.json, "
                                                      "access_token, private keys, ...), which are refused "
                                                      "otherwise.")
def push(folder, target, message, public, timeout, include_secrets):
    """Upload FOLDER (every file, sub-folders kept as folders, hidden files and
    dataset-metadata.json left out) as the Kaggle dataset OWNER/SLUG, or as its next version,
    then wait until Kaggle has processed it. Kernels read it at
    /kaggle/input/datasets/OWNER/SLUG/. A folder holding credential files (kaggle.json,
    access_token, private keys, ...) is refused unless --include-secrets.
    Exit code: 0 ready, 2 a folder or name kjob refuses,
    6 still processing at --timeout, 7 Kaggle refused it (or the credentials are another account's).

    Example: kjob dataset push data/demo --as alice/speech-demo -m "more test pairs"
    """
    from pathlib import Path

    from kjob.backends.kaggle_upload import push_dataset

    def uploaded(file):
        click.echo(f"  uploaded {file.name} ({_size(file.size)})")

    result = push_dataset(Path(folder), target, message, public, timeout, uploaded, include_secrets)
    what = "new dataset" if result.created else "new version"
    if result.version is None:
        click.echo(f"error: {result.ref} ({what}) is still being processed by Kaggle after {timeout:g} s "
                   f"(status {result.status}): its {len(result.files)} files are uploaded; look again at "
                   f"{result.url}", err=True)
        raise SystemExit(EXIT_NOT_READY)
    click.echo(f"{result.ref} v{result.version} ({what}): {len(result.files)} files, {_size(result.size)}; "
               f"ready at {result.url}")


COMMANDS = [dataset]
