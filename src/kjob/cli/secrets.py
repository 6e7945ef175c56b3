"""`kjob secrets`: the values `kaggle_secrets` answers in the runs kjob makes here (kjob.sandbox.secrets)."""

import click


@click.group("secrets")
def secrets():
    """Store the secrets runs here read with kaggle_secrets (W&B, Hugging Face tokens).

    For runs on this machine or a Ray cluster (smoke, local, Ray, the emulator):
    kaggle_secrets.UserSecretsClient().get_secret(NAME) answers the names the recipe lists
    (secrets = ["WANDB_API_KEY"]) from this store, kept outside the workspace
    (~/.config/kjob/secrets.json, mode 0600) and never shown. On Kaggle the account's own
    secrets answer, attached in the editor.

    Example: kjob secrets set WANDB_API_KEY < ~/wandb-key.txt
    """


@secrets.command("set")
@click.argument("name")
def set_(name):
    """Store NAME's value, read from standard input (typed unseen at a terminal).

    Example: kjob secrets set HF_TOKEN < ~/hf-token.txt
    """
    import sys

    from kjob.credentials import shown_path
    from kjob.sandbox.secrets import set_secret

    if sys.stdin is not None and sys.stdin.isatty():
        value = click.prompt(f"value of {name}", hide_input=True, prompt_suffix=": ", err=True)
    else:
        value = sys.stdin.read()
    path = set_secret(name, value)
    click.echo(f"stored {name} in {shown_path(path)}")


@secrets.command("list")
def list_():
    """The names stored (never their values).

    Example: kjob secrets list
    """
    from kjob.sandbox.secrets import secret_names

    names = secret_names()
    click.echo("\n".join(names) if names else "no secrets stored (kjob secrets set NAME)")


@secrets.command("delete")
@click.argument("name")
def delete(name):
    """Remove NAME from the store.

    Example: kjob secrets delete HF_TOKEN
    """
    from kjob.errors import NotFoundError
    from kjob.sandbox.secrets import delete_secret

    if not delete_secret(name):
        raise NotFoundError(f"no secret {name} stored (kjob secrets list names them)")
    click.echo(f"deleted {name}")


COMMANDS = [secrets]
