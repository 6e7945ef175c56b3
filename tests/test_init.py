"""`kjob init` in a fresh project folder, flat layouts (src_dir), the recipe's `pip` list and
the import check against Kaggle's image: the real CLI on real temporary folders."""

import json
import tomllib

import pytest
from click.testing import CliRunner

from conftest import Workspace
from kjob.build.kernel_metadata import slugify

TRAIN = '''
"""Trains the model."""
import json
import os

from pkg.model import MLP


def main(epochs=3, lr=1e-3, label="run", fast=True, widths=[4, 8], ckpt=None, steps=2 ** 3, *, seed=-1):
    model = MLP(widths[0])
    out = os.environ.get("KAGGLE_WORKING_DIR", ".")
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"epochs": epochs, "width": model.width, "seed": seed, "steps": steps}, f)
    print("trained", epochs)
'''

MODEL = '''
from pkg.layers import double


class MLP:
    def __init__(self, width):
        self.width = double(width)
'''


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Workspace:
    """An empty project folder (not a kjob workspace yet), the current folder; no Kaggle credentials
    (their user name would be the owner)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KJOB_OWNER", raising=False)
    monkeypatch.delenv("KJOB_WORKSPACE", raising=False)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    return Workspace(tmp_path, CliRunner())


@pytest.fixture
def package(folder) -> Workspace:
    """A project with a pyproject.toml (no [tool.kjob]) and a package under src/."""
    folder.write("pyproject.toml", '[project]\nname = "mine"\nversion = "0.1"\n')
    folder.write(".gitignore", ".venv/\ndownloads\n")
    folder.write("src/pkg/__init__.py", "")
    folder.write("src/pkg/layers.py", "def double(x):\n    return 2 * x\n")
    folder.write("src/pkg/model.py", MODEL)
    folder.write("src/pkg/unused.py", "import nosuchmodule\n")
    folder.write("src/pkg/train.py", TRAIN)
    return folder


def everything(ws) -> dict:
    return {p.relative_to(ws.root).as_posix(): p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()}


def test_init_writes_a_recipe_from_the_entry_function_and_never_overwrites(package):
    result = package.kjob("init", "--entry", "src/pkg/train.py:main", "--name", "mlp", "--owner", "alice")
    assert result.exit_code == 0, result.output
    recipe = tomllib.loads((package.root / "builders/mlp.toml").read_text())
    assert recipe["modules"] == ["pkg/layers.py", "pkg/model.py", "pkg/train.py"]  # imported first, unused left out
    assert recipe["entry"] == "main" and recipe["accelerator"] == "none"
    assert recipe["parameters"] == {"epochs": 3, "lr": 0.001, "label": "run", "fast": True, "widths": [4, 8], "seed": -1}
    assert slugify(recipe["title"]) == recipe["slug"]
    assert "skipped parameter ckpt: default None" in result.stdout
    assert "skipped parameter steps: default 2 ** 3 is not a literal" in result.stdout
    config = tomllib.loads((package.root / "pyproject.toml").read_text())
    assert config["project"]["name"] == "mine"
    assert config["tool"]["kjob"] == {"owner": "alice", "src_dir": "src"}
    ignored = (package.root / ".gitignore").read_text().splitlines()
    assert ignored[:2] == [".venv/", "downloads"] and "downloads/" not in ignored  # only the missing lines
    assert {".kjob/", "/kernels/"} <= set(ignored)
    assert result.stdout.strip().splitlines()[-1] == "next: kjob build mlp --smoke"

    before = everything(package)
    again = package.kjob("init", "--entry", "src/pkg/train.py:main", "--name", "mlp", "--owner", "bob")
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines() == [
        "error: builders/mlp.toml exists; kjob init never replaces a file (edit it, or pass --name for another recipe)"]
    assert everything(package) == before

    other = package.kjob("init", "--entry", "src/pkg/train.py:main", "--name", "other", "--owner", "bob")
    assert other.exit_code == 0, other.output
    assert "[tool.kjob] in pyproject.toml: exists, left as is" in other.stdout
    assert ".gitignore: has kjob's lines, left as is" in other.stdout
    assert (package.root / "pyproject.toml").read_bytes() == before["pyproject.toml"]
    assert (package.root / ".gitignore").read_bytes() == before[".gitignore"]


def test_an_initialised_project_builds_smokes_and_runs_locally(package):
    assert package.kjob("init", "--entry", "src/pkg/train.py:main", "--name", "mlp", "--owner", "alice").exit_code == 0
    built = package.kjob("build", "mlp")
    assert built.exit_code == 0, built.output
    smoke = package.kjob("build", "mlp", "--smoke")
    assert smoke.exit_code == 0, smoke.output
    assert "smoke run passed" in smoke.stdout
    pushed = package.kjob("push", "mlp", "--backend", "local", "--wait")
    assert pushed.exit_code == 0, pushed.output
    assert "mlp v1 (local): complete" in pushed.stdout
    produced = json.loads((package.root / "downloads/mlp/local-v1/output/result.json").read_text())
    assert produced == {"epochs": 3, "width": 8, "seed": -1, "steps": 8}


def test_a_flat_project_initialises_builds_and_runs(folder):
    folder.write("model.py", "class MLP:\n    def __init__(self, width):\n        self.width = width\n")
    folder.write("train.py", '''
        import json
        from model import MLP


        def main(width=4):
            with open("result.json", "w") as f:
                json.dump({"width": MLP(width).width}, f)


        if __name__ == "__main__":
            main()
        ''')
    result = folder.kjob("init", "--entry", "train.py:main", "--owner", "alice")
    assert result.exit_code == 0, result.output
    name = folder.root.name  # the default recipe name: the folder's
    assert (folder.root / "kjob.toml").is_file() and not (folder.root / "pyproject.toml").exists()
    assert tomllib.loads((folder.root / "kjob.toml").read_text()) == {"owner": "alice", "src_dir": "."}
    assert tomllib.loads((folder.root / f"builders/{name}.toml").read_text())["modules"] == ["model.py", "train.py"]
    assert f"next: kjob build {name} --smoke" in result.stdout

    smoke = folder.kjob("build", name, "--smoke")
    assert smoke.exit_code == 0, smoke.output
    cells = json.loads((folder.root / f"kernels/{name}/{name}.ipynb").read_text())["cells"]
    train = next(c["source"] for c in cells if c["id"] == "src-train-py")
    assert "\n# from model import MLP\n" in train  # inlined like a sibling import
    pushed = folder.kjob("push", name, "--backend", "local", "--wait")
    assert pushed.exit_code == 0, pushed.output
    assert json.loads((folder.root / f"downloads/{name}/local-v1/output/result.json").read_text()) == {"width": 4}


FLAT_RECIPE = """
title = "Flat Kernel"
slug = "flat-kernel"
modules = MODULES
entry = "main"
accelerator = "none"
"""


def test_top_level_modules_under_src_build_and_a_missing_one_is_named(folder):
    folder.write("kjob.toml", 'owner = "alice"\n')
    folder.write("src/model.py", "class MLP:\n    pass\n")
    folder.write("src/train.py", "from model import MLP\n\n\ndef main():\n    return MLP()\n")
    folder.write("builders/flat.toml", FLAT_RECIPE.replace("MODULES", '["train.py"]'))
    result = folder.kjob("build", "flat")
    assert result.exit_code == 3
    assert ("error: src/train.py:1: imports 'model', a module of this project (src/model.py) that is not among "
            "the recipe's modules: add \"model.py\" to modules in builders/flat.toml") in result.stderr
    assert "target_modules" not in result.stderr
    folder.write("builders/flat.toml", FLAT_RECIPE.replace("MODULES", '["model.py", "train.py"]'))
    result = folder.kjob("build", "flat", "--smoke")
    assert result.exit_code == 0, result.output


def test_modules_at_the_root_without_src_dir_get_a_hint(folder):
    folder.write("kjob.toml", 'owner = "alice"\n')
    folder.write("train.py", "def main():\n    pass\n")
    folder.write("builders/flat.toml", FLAT_RECIPE.replace("MODULES", '["train.py"]'))
    result = folder.kjob("build", "flat")
    assert result.exit_code == 4
    assert result.stderr.strip() == ('error: builders/flat.toml: module src/train.py does not exist (train.py is at '
                                     'the workspace\'s root: set src_dir = "." under [tool.kjob])')
    init = folder.kjob("init", "--entry", "train.py:main", "--name", "other")
    assert init.exit_code == 2
    assert "outside the source folder 'src' ([tool.kjob] src_dir)" in init.stderr


@pytest.mark.parametrize("value", ['"../x"', '"/abs"', '""', "3", '"a/../b"'])
def test_a_bad_src_dir_is_one_line(folder, value):
    folder.write("kjob.toml", f'owner = "alice"\nsrc_dir = {value}\n')
    result = folder.kjob("builders")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: kjob.toml: src_dir: expected a folder inside the workspace")


@pytest.mark.parametrize("entry, code, message", [
    ("src/pkg/train", 2, "--entry expects PATH.py (a script) or PATH.py:FUNCTION"),
    ("src/pkg/nope.py", 4, "--entry: no file src/pkg/nope.py"),
    ("src/pkg/nope.py:main", 4, "--entry: no file src/pkg/nope.py"),
    ("src/pkg/train.py:fit", 4, "src/pkg/train.py defines no function 'fit' at its top level"),
])
def test_init_refuses_an_entry_it_cannot_find(package, entry, code, message):
    result = package.kjob("init", "--entry", entry)
    assert result.exit_code == code
    assert message in result.stderr
    assert not (package.root / "builders").exists() and "[tool.kjob]" not in (package.root / "pyproject.toml").read_text()


PIP_RECIPE = """
title = "Pip Kernel"
slug = "pip-kernel"
modules = ["job.py"]
entry = "main"
accelerator = "none"
internet = INTERNET
PIP
"""


def pip_workspace(folder, pip, internet="true", code="import pyflakes\n"):
    folder.write("kjob.toml", 'owner = "alice"\n')
    folder.write("src/job.py", code + "\n\ndef main():\n    print('ran')\n")
    folder.write("builders/p.toml", PIP_RECIPE.replace("INTERNET", internet).replace("PIP", pip))


def test_pip_packages_get_an_install_cell_and_count_as_available(folder):
    pip_workspace(folder, 'pip = ["pyflakes>=3", "faiss-cpu==1.7.4", "odd-dist"]\npip_modules = ["oddname"]',
                  code="import pyflakes\nimport faiss\nimport oddname\n")
    result = folder.kjob("build", "p")
    assert result.exit_code == 0, result.output
    nb = json.loads((folder.root / "kernels/p/p.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["id"] == "kjob-pip"
    assert ('"-m", "pip", "install", "-q", "--disable-pip-version-check", "pyflakes>=3", "faiss-cpu==1.7.4", '
            '"odd-dist"]') in code[0]["source"]
    assert json.loads((folder.root / "kernels/p/build.json").read_text())["pip"] == ["pyflakes>=3", "faiss-cpu==1.7.4", "odd-dist"]
    assert json.loads((folder.root / "kernels/p/kernel-metadata.json").read_text())["enable_internet"] is True


def test_without_the_pip_list_the_same_imports_are_refused(folder):
    pip_workspace(folder, "", code="import faiss\n")
    result = folder.kjob("build", "p")
    assert result.exit_code == 3
    assert ("src/job.py:1: imports 'faiss', which Kaggle's image does not provide: list its package under pip "
            "in builders/p.toml") in result.stderr


@pytest.mark.parametrize("pip, internet, message", [
    ('pip = ["pyflakes"]', "false", "builders/p.toml: pip: a Kaggle run can only install packages with internet on"),
    ('pip = ["--index-url=http://x"]', "true", "builders/p.toml: pip: expected requirement strings like"),
    ('pip = ["git+https://github.com/x/y"]', "true", "builders/p.toml: pip: expected requirement strings like"),
    ('pip = "pyflakes"', "true", "builders/p.toml: pip: expected requirement strings like"),
    ('pip = ["pyflakes"]\npip_modules = ["not a name"]', "true", "builders/p.toml: pip_modules: expected a list"),
])
def test_a_bad_pip_list_is_refused_in_one_line(folder, pip, internet, message):
    pip_workspace(folder, pip, internet)
    result = folder.kjob("build", "p")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr
    assert not (folder.root / "kernels/p").exists()


def test_a_smoke_run_uses_installed_packages_and_refuses_missing_ones(folder):
    pip_workspace(folder, 'pip = ["pyflakes<1"]')
    result = folder.kjob("build", "p", "--smoke")
    assert result.exit_code == 0, result.output
    assert "note: the smoke run used pyflakes" in result.stderr and "the recipe asks for 'pyflakes<1'" in result.stderr
    executed = json.loads((folder.root / ".kjob/smoke/p/executed.ipynb").read_text())
    pip_cell = next(c for c in executed["cells"] if c["id"] == "kjob-pip")
    assert pip_cell["source"].startswith("# kjob smoke run: pip install skipped; installed here: pyflakes ")
    before = folder.snapshot("kernels/p")

    pip_workspace(folder, 'pip = ["pyflakes", "kjob-no-such-package==1.0"]')
    result = folder.kjob("build", "p", "--smoke")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: smoke run of p: pip package 'kjob-no-such-package==1.0' (builders/p.toml: pip) is not installed "
        "here, and a smoke run does not install from the network; install it (python -m pip install "
        "'kjob-no-such-package==1.0') and run again; kernels/p left unchanged")
    assert folder.snapshot("kernels/p") == before


def test_image_modules_are_accepted_and_unknown_ones_refused(folder):
    pip_workspace(folder, "", code="import timm\nimport wandb\nimport cv2\nfrom lightning import Trainer\n")
    assert folder.kjob("build", "p").exit_code == 0
    pip_workspace(folder, "", code="import timm\nimport kjob_unknown_module\n")
    result = folder.kjob("build", "p")
    assert result.exit_code == 3
    assert "imports 'kjob_unknown_module', which Kaggle's image does not provide" in result.stderr
    assert "'timm'" not in result.stderr


def test_init_without_an_owner_says_what_to_set(folder):
    folder.write("train.py", "def main(n=1):\n    print(n)\n")
    result = folder.kjob("init", "--entry", "train.py:main", "--name", "job")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-2:] == [
        'next: set owner = "<your Kaggle user name>" in kjob.toml before a Kaggle push (local builds and runs need '
        'none)',
        "next: kjob build job --smoke"]
    assert "owner" not in tomllib.loads((folder.root / "kjob.toml").read_text())


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "-x", "a b"])
def test_a_name_that_is_no_recipe_name_is_refused_and_nothing_is_written(package, name):
    before = everything(package)
    result = package.kjob("init", "--entry", "src/pkg/train.py:main", "--name", name)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "is not a recipe name" in result.stderr
    assert everything(package) == before
    assert not (package.root.parent / "evil.toml").exists()


def test_init_reads_a_typer_run_script(folder):
    """`typer.run(main)`: options held in module-level names, Annotated arguments and options, an
    Optional defaulting to None, a count: each a parameter or a line saying why not."""
    folder.write("train.py", '''
        from pathlib import Path
        from typing import Optional

        import typer
        from typing_extensions import Annotated

        EPOCHS = typer.Option(10, "--epochs", "-e", min=1)


        def main(
            run_path: Annotated[Path, typer.Argument()],
            assets: Annotated[Path, typer.Option()] = "assets",
            epochs: int = EPOCHS,
            verbose: int = typer.Option(0, "-v", count=True),
            seed: Optional[int] = None,
            fp16: Annotated[bool, typer.Option("--fp16/--fp32")] = True,
        ):
            print(run_path, assets, epochs, verbose, seed, fp16)


        if __name__ == "__main__":
            typer.run(main)
        ''')
    result = folder.kjob("init", "--entry", "train.py", "--name", "ty")
    assert result.exit_code == 0, result.output
    made = tomllib.loads((folder.root / "builders/ty.toml").read_text())
    assert made["parameters"] == {"assets": "assets", "epochs": 10, "verbose": 0, "fp16": True}
    assert made["smoke"]["parameters"] == {"epochs": 1}
    assert "skipped parameter run_path: no default (required: set it here, or give it with -p run_path=...)" \
        in result.stdout
    assert "skipped parameter seed: default None (set it with -p seed=...)" in result.stdout


def test_init_reads_a_click_group(folder):
    """A click group runs a command by name: `command` is a parameter whose choices are its commands
    (a training one preferred), and an option two commands share is one parameter."""
    folder.write("cli.py", '''
        import click


        @click.group()
        @click.option("--debug/--no-debug", default=False)
        def cli(debug):
            pass


        @cli.command()
        @click.option("--seed", type=int, default=0)
        def prepare(seed):
            print("prepare", seed)


        @cli.command(name="fit")
        @click.option("--seed", type=int, default=0)
        @click.option("--epochs", type=int, default=10)
        def train_model(seed, epochs):
            print("fit", seed, epochs)


        if __name__ == "__main__":
            cli()
        ''')
    result = folder.kjob("init", "--entry", "cli.py", "--name", "grp")
    assert result.exit_code == 0, result.output
    made = tomllib.loads((folder.root / "builders/grp.toml").read_text())
    assert made["parameters"] == {"command": "prepare", "debug": False, "seed": 0, "epochs": 10}
    bad = folder.kjob("build", "grp", "-p", "command=train")
    assert bad.exit_code == 3
    assert "cli.py:10: command = 'train' is not one of its choices ('prepare', 'fit')" in bad.stderr
