"""`kjob leakage`: does the test set hold audio of the training set? The audit itself
(speechscore.leakage, speechscore.fingerprint) is imported inside the command only."""

import json

import click

from kjob.cli.format import table
from kjob.extras import require_speech, speech_installed

# Not an error: the audit ran, and found leaks. Documented in README's exit-code table.
EXIT_LEAKS = 9
SHOWN = 50


@click.command("leakage", hidden=not speech_installed())
@click.option("--train", "train", type=click.Path(file_okay=False, path_type=str), multiple=True, required=True,
              help="Training audio: a folder (all audio under it), repeatable. A dataset folder with train and "
                   "test splits gives its train split.")
@click.option("--test", "test", type=click.Path(file_okay=False, path_type=str), multiple=True, required=True,
              help="Test (or validation) audio, the same way; a dataset folder gives its test split.")
@click.option("--group-by", "group_by", metavar="REGEX", default=None,
              help="Also report clip ids found on both sides: the regex's first group (or match) in each "
                   "file's path inside its folder, e.g. '^(\\d+-\\d+)-'.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as JSON.")
def leakage_command(train, test, group_by, as_json):
    """Look for test audio that also sits on the training side: exact copies (the same
    decoded samples), near-duplicates (the same utterance under other noise, gain, a small
    shift or resampling, by audio fingerprint) and, with --group-by, clip ids on both sides.
    Exit code: 0 no leakage, 9 leakage found, 2 bad options, 3 unreadable audio, 4 not found.

    Example: kjob leakage --train data/demo --test data/demo
    """
    require_speech("leakage")
    from pathlib import Path

    from kjob.errors import ConfigError, ValidationError
    from speechscore.audio import AudioError
    from speechscore.leakage_files import audit_folders

    try:
        from kjob.workspace import find_workspace

        cache = find_workspace().paths.eval_cache / "fingerprints"
    except ConfigError:
        cache = None  # outside a workspace: nothing is cached
    try:
        result = audit_folders([Path(t) for t in train], [Path(t) for t in test], group_by, cache)
    except AudioError as exc:
        raise ValidationError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        _print(result)
    if not result.clean:
        click.get_current_context().exit(EXIT_LEAKS)


def _print(result) -> None:
    compared = (f"{result.compared_fingerprints:,} fingerprint comparisons" if not result.skipped
                else result.skipped)
    click.echo(f"{result.train_files} training and {result.test_files} test files; {compared} "
               f"(near-duplicate at correlation >= {result.threshold})")
    if result.clean:
        click.echo("no leakage found")
        return
    rows = [[f.kind, f.test, f.train + (f" (+{f.others} more)" if f.others else ""), f.evidence]
            for f in result.findings[:SHOWN]]
    click.echo(table(["KIND", "TEST FILE", "TRAINING FILE", "EVIDENCE"], rows))
    if len(result.findings) > SHOWN:
        click.echo(f"... and {len(result.findings) - SHOWN} more (--json lists all)")
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.counts().items()))
    click.echo(f"leakage: {len(result.findings)} finding(s) ({counts})", err=True)


COMMANDS = [leakage_command]
