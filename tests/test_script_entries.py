"""Training projects as they are: a script entry (argparse under `__main__`, or at module level with
`import x` siblings) and a function entry, each through `kjob init`, `build --smoke`, a local push
and `kjob runs`, with no Kaggle owner and no Kaggle credentials (issue 21)."""

import json
import re
import tomllib

import pytest

from conftest import Workspace, stranger_folder

# A character-level model trained by an argparse script under __main__, its data file beside it.
CHAR_TRAIN = '''
import argparse
import json
import os


def train(path, max_steps, lr, hidden, work_dir, verbose):
    text = open(path, encoding="utf-8").read()
    chars = sorted(set(text))
    os.makedirs(work_dir, exist_ok=True)
    loss = float(len(chars))
    with open(os.path.join(work_dir, "metrics.jsonl"), "w") as log:
        for step in range(1, max_steps + 1):
            loss = loss * (1 - lr)
            log.write(json.dumps({"step": step, "train_loss": loss}) + "\\n")
            if verbose:
                print(f"step {step} | loss {loss:.4f}")
    print(f"trained on {len(text)} chars, hidden {hidden}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="char model")
    parser.add_argument("--input-file", "-i", type=str, default="input.txt")
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--learning-rate", "-l", dest="lr", type=float, default=5e-4)
    parser.add_argument("--hidden", type=int, nargs="+", default=[8, 8])
    parser.add_argument("--work-dir", "-o", type=str, default=".")
    parser.add_argument("--quiet", dest="verbose", action="store_false")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    train(args.input_file, args.max_steps, args.lr, args.hidden, args.work_dir, args.verbose)
'''

# A word-level model whose main.py parses its arguments at module level and imports its siblings whole.
WORD_MAIN = '''
import argparse
import json

import data
import model
from helpers import *

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=str, default="./data/words")
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--lr", type=float, default=20)
parser.add_argument("--tied", action="store_true")
parser.add_argument("--save", type=str, required=True)
args = parser.parse_args()

lr = args.lr  # a module-level name that is also a parameter: the parameters never meet it
corpus = data.Corpus(args.data)
net = model.RNNModel(len(corpus.words), tied=args.tied)
for epoch in range(1, args.epochs + 1):
    loss = net.step(lr)
    print(f"| end of epoch {epoch:3d} | valid loss {loss:5.2f} | valid ppl {ppl(loss):8.2f}")
with open(args.save, "w") as f:
    json.dump({"epochs": args.epochs, "tied": args.tied, "vocab": len(corpus.words)}, f)
'''

WORD_DATA = '''
import os


class Corpus:
    def __init__(self, path):
        with open(os.path.join(path, "train.txt"), encoding="utf-8") as f:
            self.words = sorted(set(f.read().split()))
'''

WORD_HELPERS = '''
import math


def ppl(loss):
    return math.exp(loss)
'''

WORD_MODEL = '''
class RNNModel:
    def __init__(self, vocab, tied=False):
        self.loss, self.tied = float(vocab), tied

    def step(self, lr):
        self.loss = self.loss / (1 + lr / 100)
        return self.loss
'''


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Workspace:
    """An empty project folder, with no Kaggle owner and no Kaggle credentials anywhere."""
    return stranger_folder(tmp_path, monkeypatch)


def recipe(ws: Workspace, name: str) -> dict:
    return tomllib.loads((ws.root / f"builders/{name}.toml").read_text())


def edit_recipe(ws: Workspace, name: str, *pairs: tuple[str, str]) -> None:
    path = ws.root / f"builders/{name}.toml"
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


def smoke_printed(ws: Workspace, name: str) -> str:
    """What the last smoke run of `name` printed, all its cells' output text in order."""
    executed = json.loads((ws.root / f".kjob/smoke/{name}/executed.ipynb").read_text())
    return "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))


def test_an_argparse_script_under_main_runs_as_main_with_its_command_line(folder):
    folder.write("train.py", CHAR_TRAIN)
    folder.write("input.txt", "hello world, a small real data file\n" * 50)
    folder.write("sample/input.txt", "hello\n")
    code = (folder.root / "train.py").read_bytes()

    init = folder.kjob("init", "--entry", "train.py", "--name", "char")
    assert init.exit_code == 0, init.output
    assert ("wrote builders/char.toml: the script train.py; modules train.py; parameters input_file, max_steps, lr, "
            "hidden, work_dir, verbose, device; smoke parameters max_steps=2") in init.stdout
    assert "before a Kaggle push (local builds and runs need none)" in init.stdout  # no owner, no credentials
    made = recipe(folder, "char")
    assert made["entry"] == "train.py" and made["modules"] == ["train.py"]
    assert made["parameters"] == {"input_file": "input.txt", "max_steps": -1, "lr": 0.0005, "hidden": [8, 8],
                                  "work_dir": ".", "verbose": True, "device": "cpu"}
    assert made["smoke"]["parameters"] == {"max_steps": 2}
    assert ('next: input_file = "input.txt" names a file of this project; if the code reads it, map its folder as a '
            "dataset source and point the parameter at /kaggle/input/SLUG/...") in init.stdout
    assert "work_dir" not in init.stdout.split("next:", 1)[1]  # "." is the working folder, not data

    # Left so, the script cannot find its file in the kernel's working folder: the failure says why.
    smoke = folder.kjob("build", "char", "--smoke")
    assert smoke.exit_code == 1
    assert ("FileNotFoundError: [Errno 2] No such file or directory: 'input.txt'; kernels/char left unchanged" in
            smoke.stderr)
    assert ('hint: input.txt is a file of this project, but a kernel runs in /kaggle/working and reads data under '
            '/kaggle/input: map its folder as a dataset source ("OWNER/SLUG" = "." under [tool.kjob.datasets], '
            '"OWNER/SLUG" in the recipe\'s dataset_sources) and set input_file = "/kaggle/input/SLUG/input.txt"'
            ) in smoke.stderr

    # The data file beside the code reaches the run as a dataset source, mapped as the docs spell it
    # ([tool.kjob.datasets], here in kjob.toml); a smoke run reads a smaller sample folder.
    with open(folder.root / "kjob.toml", "a") as f:
        f.write('\n[tool.kjob.datasets]\n"me/chars" = "."\n')
    edit_recipe(folder, "char",
                ('# dataset_sources = ["owner/slug"]', 'dataset_sources = ["me/chars"]\n#'),
                ('input_file = "input.txt"', 'input_file = "/kaggle/input/chars/input.txt"'),
                ("timeout = 120", 'timeout = 120\ndatasets = {"me/chars" = "sample"}'))

    smoke = folder.kjob("build", "char", "--smoke")
    assert smoke.exit_code == 0, smoke.output
    assert "outputs: metrics.jsonl" in smoke.stdout
    assert "no Kaggle owner configured" in smoke.stderr  # a note, not a refusal
    executed = json.loads((folder.root / ".kjob/smoke/char/executed.ipynb").read_text())
    printed = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert printed[0] == "kjob: python train.py --input-file /kaggle/input/chars/input.txt --max-steps 2 " \
                         "--learning-rate 0.0005 --hidden 8 8 --work-dir . --device cpu\n"
    assert "trained on 6 chars, hidden [8, 8]" in printed[-1]  # the sample, not the full file

    pushed = folder.kjob("push", "char", "--backend", "local", "-p", "max_steps=3", "-p", "verbose=false",
                         "-p", "hidden=[4, 2]", "--wait")
    assert pushed.exit_code == 0, pushed.output
    log = (folder.root / "downloads/char/local-v1/log.txt").read_text()
    assert ("kjob: python train.py --input-file /kaggle/input/chars/input.txt --max-steps 3 --learning-rate 0.0005 "
            "--hidden 4 2 --work-dir . --quiet --device cpu") in log
    assert "trained on 1800 chars, hidden [4, 2]" in log
    lines = (folder.root / "downloads/char/local-v1/output/metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    runs = folder.kjob("runs")
    assert "max_steps=3" in runs.stdout and "verbose=False" in runs.stdout, runs.stdout

    bad = folder.kjob("build", "char", "-p", "device=tpu")
    assert bad.exit_code == 3
    assert "train.py:28: device = 'tpu' is not one of its choices ('cpu', 'cuda')" in bad.stderr
    assert (folder.root / "train.py").read_bytes() == code


def test_a_module_level_script_with_import_siblings(folder):
    folder.write("main.py", WORD_MAIN)
    folder.write("data.py", WORD_DATA)
    folder.write("model.py", WORD_MODEL)
    folder.write("helpers.py", WORD_HELPERS)
    folder.write("data/words/train.txt", "the cat sat on the mat\n")

    init = folder.kjob("init", "--entry", "main.py", "--name", "words")
    assert init.exit_code == 0, init.output
    assert "modules data.py, model.py, helpers.py, main.py" in init.stdout
    assert "skipped parameter save: no default (required: set it here, or give it with -p save=...)" in init.stdout
    made = recipe(folder, "words")
    assert made["parameters"] == {"data": "./data/words", "epochs": 40, "lr": 20.0, "tied": False}
    assert made["smoke"]["parameters"] == {"epochs": 1}
    assert "# skipped save: no default" in (folder.root / "builders/words.toml").read_text()

    missing = folder.kjob("build", "words")
    assert missing.exit_code == 3
    assert "main.py: the script requires save: give it with -p save=... or under [parameters]" in missing.stderr
    unknown = folder.kjob("build", "words", "-p", "epoch=2")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == ("error: unknown parameter 'epoch' for words: not an option of main.py "
                                      "(its options: data, epochs, lr, tied, save)")

    edit_recipe(folder, "words", ("tied = false", 'tied = false\nsave = "result.json"'),
                ('data = "./data/words"', 'data = "/kaggle/input/words"'),
                ('# dataset_sources = ["owner/slug"]', 'dataset_sources = ["me/words"]\n#'))
    with open(folder.root / "kjob.toml", "a") as f:
        f.write('\n[datasets]\n"me/words" = "data/words"\n')
    smoke = folder.kjob("build", "words", "--smoke")
    assert smoke.exit_code == 0, smoke.output
    cells = {c["id"]: c["source"] for c in json.loads((folder.root / "kernels/words/words.ipynb").read_text())["cells"]}
    assert "\nimport data\nimport model\n# from helpers import *\n" in cells["src-main-py"]  # data, model registered
    assert "_kjob_sys.modules['data']" in cells["src-data-py"]

    pushed = folder.kjob("push", "words", "--backend", "local", "-p", "epochs=2", "-p", "tied=true", "--wait")
    assert pushed.exit_code == 0, pushed.output
    log = (folder.root / "downloads/words/local-v1/log.txt").read_text()
    assert "kjob: python main.py --data /kaggle/input/words --epochs 2 --lr 20.0 --tied --save result.json" in log
    assert "| end of epoch   2 | valid loss" in log
    result = json.loads((folder.root / "downloads/words/local-v1/output/result.json").read_text())
    assert result == {"epochs": 2, "tied": True, "vocab": 5}
    runs = folder.kjob("runs")
    assert "epochs=2" in runs.stdout and "tied=True" in runs.stdout, runs.stdout

    # Only a Kaggle push asks for an owner, in today's one line.
    kaggle = folder.kjob("push", "words", "--backend", "kaggle")
    assert kaggle.exit_code == 2
    assert kaggle.stderr.strip().splitlines()[-1].startswith("error: no Kaggle owner configured: set `owner`")


def test_a_function_entry_as_today_with_a_note_on_its_main_block(folder):
    folder.write("model.py", "class MLP:\n    def __init__(self, width):\n        self.width = width\n")
    folder.write("train.py", '''
        import json
        import model


        def main(width=4, epochs=3):
            with open("result.json", "w") as f:
                json.dump({"width": model.MLP(width).width, "epochs": epochs}, f)


        if __name__ == "__main__":
            main()
        ''')
    init = folder.kjob("init", "--entry", "train.py:main", "--name", "fn")
    assert init.exit_code == 0, init.output
    assert recipe(folder, "fn")["parameters"] == {"width": 4, "epochs": 3}
    smoke = folder.kjob("build", "fn", "--smoke")
    assert smoke.exit_code == 0, smoke.output
    assert ("warning: train.py:10: its `if __name__ == \"__main__\":` block is left out: the notebook calls main() "
            "instead") in smoke.stderr
    pushed = folder.kjob("push", "fn", "--backend", "local", "-p", "epochs=5", "--wait")
    assert pushed.exit_code == 0, pushed.output
    assert json.loads((folder.root / "downloads/fn/local-v1/output/result.json").read_text()) == {"width": 4,
                                                                                                 "epochs": 5}
    assert "epochs=5" in folder.kjob("runs").stdout


def test_the_owner_comes_from_the_kaggle_credentials(folder):
    (folder.root / "no-kaggle").mkdir()
    (folder.root / "no-kaggle/kaggle.json").write_text(json.dumps({"username": "carol", "key": "0" * 8 + "1" * 24}))
    folder.write("train.py", "def main(n=1):\n    print(n)\n")
    init = folder.kjob("init", "--entry", "train.py:main", "--name", "job")
    assert init.exit_code == 0, init.output
    assert "owner: carol, the user name of your Kaggle credentials" in init.stdout
    assert folder.kjob("build", "job").exit_code == 0
    assert json.loads((folder.root / "kernels/job/kernel-metadata.json").read_text())["id"] == "carol/job-kernel"


def test_a_gpu_recipe_on_the_cpu_fails_with_a_hint(folder):
    folder.write("train.py", '''
        import torch


        def main(device="cuda"):
            print(torch.zeros(1, device=device) + 1)
        ''')
    assert folder.kjob("init", "--entry", "train.py:main", "--name", "gpu").exit_code == 0
    smoke = folder.kjob("build", "gpu", "--smoke")
    assert smoke.exit_code == 1
    assert "hint: no GPU here: the code asked for CUDA; run it on the CPU with -p device=cpu" in smoke.stderr
    pushed = folder.kjob("push", "gpu", "--backend", "local", "--wait")
    assert "hint: no GPU here: the code asked for CUDA; run it on the CPU with -p device=cpu, or for every run " \
           "on a backend with [tool.kjob.<backend>.parameters]" in pushed.output
    assert folder.kjob("build", "gpu", "-p", "device=cpu", "--smoke").exit_code == 0


def test_kjob_toml_names_the_right_spelling(folder):
    folder.write("train.py", "def main(n=1):\n    print(n)\n")
    assert folder.kjob("init", "--entry", "train.py:main", "--name", "job").exit_code == 0
    with open(folder.root / "kjob.toml", "a") as f:
        f.write('\n[tool.datasets]\n"me/x" = "data"\n')
    result = folder.kjob("builders")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: kjob.toml: [tool] is pyproject.toml's table; in kjob.toml write kjob's "
                                     "keys at the top (owner = ..., [datasets], [local.parameters]), or under "
                                     "[tool.kjob]")


CLICK_TRAIN = '''
import json

import click


@click.command()
@click.option("--max-steps", type=int, default=100)
@click.option("--learning-rate", "lr", default=0.01)
@click.option("--shuffle/--no-shuffle", default=True)
@click.option("--mode", type=click.Choice(["fast", "slow"]), default="slow")
@click.argument("out")
def main(max_steps, lr, shuffle, mode, out):
    with open(out, "w") as f:
        json.dump({"max_steps": max_steps, "lr": lr, "shuffle": shuffle, "mode": mode}, f)


if __name__ == "__main__":
    main()  # click ends with sys.exit(0): the kernel takes it as the script's normal end
'''


def test_a_click_script(folder):
    folder.write("train.py", CLICK_TRAIN)
    init = folder.kjob("init", "--entry", "train.py", "--name", "clicky")
    assert init.exit_code == 0, init.output
    assert recipe(folder, "clicky")["parameters"] == {"max_steps": 100, "lr": 0.01, "shuffle": True, "mode": "slow"}
    assert recipe(folder, "clicky")["smoke"]["parameters"] == {"max_steps": 2}
    edit_recipe(folder, "clicky", ('mode = "slow"', 'mode = "slow"\nout = "result.json"'))
    smoke = folder.kjob("build", "clicky", "--smoke")
    assert smoke.exit_code == 0, smoke.output
    pushed = folder.kjob("push", "clicky", "--backend", "local", "-p", "shuffle=false", "-p", "mode=fast", "--wait")
    assert pushed.exit_code == 0, pushed.output
    log = (folder.root / "downloads/clicky/local-v1/log.txt").read_text()
    assert "kjob: python train.py --max-steps 100 --learning-rate 0.01 --no-shuffle --mode fast result.json" in log
    assert json.loads((folder.root / "downloads/clicky/local-v1/output/result.json").read_text()) == {
        "max_steps": 100, "lr": 0.01, "shuffle": False, "mode": "fast"}
    assert "shuffle=False" in folder.kjob("runs").stdout
    assert folder.kjob("build", "clicky", "-p", "mode=medium").exit_code == 3


# A typer app of two commands (the command line names the one it runs): a plain option, Option(default, names), Annotated, a bool pair typer
# makes itself, a single-switch bool, an Enum, a list and an argument.
TYPER_TRAIN = '''
import json
from enum import Enum
from typing import Annotated, List

import typer

app = typer.Typer()


class Mode(str, Enum):
    fast = "fast"
    slow = "slow"


@app.command()
def train(
    out: str,
    max_steps: int = 100,
    lr: float = typer.Option(0.01, "--learning-rate", "-l"),
    width: Annotated[int, typer.Option("--width", "-w")] = 8,
    shuffle: bool = True,
    compile: bool = typer.Option(False, "--compile"),
    mode: Mode = Mode.slow,
    tags: List[str] = typer.Option(["a"], "--tag"),
):
    with open(out, "w") as f:
        json.dump({"max_steps": max_steps, "lr": lr, "width": width, "shuffle": shuffle, "compile": compile,
                   "mode": mode.value, "tags": tags}, f)


@app.command()
def evaluate(checkpoint: str = "last.pt"):
    print("evaluating", checkpoint)


if __name__ == "__main__":
    app()
'''


def test_a_typer_script(folder):
    folder.write("train.py", TYPER_TRAIN)
    init = folder.kjob("init", "--entry", "train.py", "--name", "ty")
    assert init.exit_code == 0, init.output
    assert "skipped parameter out: no default (required: set it here, or give it with -p out=...)" in init.stdout
    made = recipe(folder, "ty")
    assert made["parameters"] == {"command": "train", "max_steps": 100, "lr": 0.01, "width": 8, "shuffle": True,
                                  "compile": False, "mode": "slow", "tags": ["a"], "checkpoint": "last.pt"}
    assert 'command = "train"  # the command train.py runs: train, evaluate' in \
        (folder.root / "builders/ty.toml").read_text()
    assert made["smoke"]["parameters"] == {"max_steps": 2}
    assert "train.py:23: mode = 'medium' is not one of its choices ('fast', 'slow')" in \
        folder.kjob("build", "ty", "-p", "mode=medium").stderr

    edit_recipe(folder, "ty", ('mode = "slow"', 'mode = "slow"\nout = "result.json"'))
    pushed = folder.kjob("push", "ty", "--backend", "local", "-p", "shuffle=false", "-p", "compile=true",
                         "-p", "mode=fast", "-p", "tags=[\"x\", \"y\"]", "-p", "width=3", "--wait")
    assert pushed.exit_code == 0, pushed.output
    log = (folder.root / "downloads/ty/local-v1/log.txt").read_text()
    assert ("kjob: python train.py train --max-steps 100 --learning-rate 0.01 --width 3 --no-shuffle --compile "
            "--mode fast --tag x --tag y result.json") in log
    assert json.loads((folder.root / "downloads/ty/local-v1/output/result.json").read_text()) == {
        "max_steps": 100, "lr": 0.01, "width": 3, "shuffle": False, "compile": True, "mode": "fast",
        "tags": ["x", "y"]}


# Flags of all kinds: click's pair and its single switch on by default; argparse's store_false and
# BooleanOptionalAction.
FLAGS_CLICK = '''
import click


@click.command()
@click.option("--amp/--no-amp", default=True)
@click.option("--cuda", is_flag=True, default=True)
def main(amp, cuda):
    print(f"amp={amp} cuda={cuda}")


if __name__ == "__main__":
    main()
'''

FLAGS_ARGPARSE = '''
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--no-augment", dest="augment", action="store_false")
parser.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
parser.add_argument("--fp16", action="store_true", default=True)
args = parser.parse_args()
print(f"augment={args.augment} ema={args.ema} fp16={args.fp16}")
'''


def test_boolean_flags_turn_off_or_say_they_cannot(folder):
    folder.write("clicky.py", FLAGS_CLICK)
    folder.write("plain.py", FLAGS_ARGPARSE)
    for script in ("clicky", "plain"):
        assert folder.kjob("init", "--entry", f"{script}.py", "--name", script).exit_code == 0
    assert recipe(folder, "clicky")["parameters"] == {"amp": True, "cuda": True}
    assert recipe(folder, "plain")["parameters"] == {"augment": True, "ema": True, "fp16": True}
    assert "cuda = true  # --cuda has no off switch: the script always runs with it true" in \
        (folder.root / "builders/clicky.toml").read_text()

    stuck = folder.kjob("build", "clicky", "-p", "cuda=false")
    assert stuck.exit_code == 3
    assert stuck.stderr.splitlines()[0] == (
        "error: clicky.py:6: cuda = false cannot be given on the command line: --cuda only sets it true, its default, "
        "and the script has no switch for the other way; leave it true")
    assert "fp16 = false cannot be given" in folder.kjob("build", "plain", "-p", "fp16=false").stderr

    smoke = folder.kjob("build", "clicky", "--smoke", "-p", "amp=false")
    assert smoke.exit_code == 0, smoke.output
    smoke = folder.kjob("build", "plain", "--smoke", "-p", "augment=false", "-p", "ema=false")
    assert smoke.exit_code == 0, smoke.output
    printed = {name: smoke_printed(folder, name) for name in ("clicky", "plain")}
    assert printed["clicky"] == "kjob: python clicky.py --no-amp --cuda\namp=False cuda=True\n"
    assert printed["plain"] == ("kjob: python plain.py --no-augment --no-ema --fp16\n"
                                "augment=False ema=False fp16=True\n")


# A script that reads the data beside it through __file__, both ways people write it.
FILE_TRAIN = '''
import argparse
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()

names = (Path(__file__).parent / "names.txt").read_text().split()
with open(os.path.join(os.path.dirname(__file__), "data", "extra.txt")) as f:
    extra = f.read().split()
print(f"{len(names)} names, {len(extra)} extra, {args.epochs} epochs")
'''


def test_a_script_reading_files_beside_it_through_file(folder):
    folder.write("train.py", FILE_TRAIN)
    folder.write("names.txt", "emma olivia ava\n")
    folder.write("data/extra.txt", "liam noah\n")
    code = (folder.root / "train.py").read_bytes()
    assert folder.kjob("init", "--entry", "train.py", "--name", "names").exit_code == 0

    # No source holds the script's folder: __file__ is in the working folder, and the build says so.
    built = folder.kjob("build", "names")
    assert built.exit_code == 0, built.output
    assert ("train.py reads __file__: in the kernel it is /kaggle/working/train.py (the run's working folder), "
            "where the files next to the script are not; to read them, map the script's folder as a dataset "
            "source") in built.stderr

    # The project folder mapped as a dataset source: __file__ is the script's place in its mount.
    with open(folder.root / "kjob.toml", "a") as f:
        f.write('\n[datasets]\n"me/names" = "."\n')
    edit_recipe(folder, "names", ('# dataset_sources = ["owner/slug"]', 'dataset_sources = ["me/names"]\n#'))
    mapped = folder.kjob("build", "names")
    assert mapped.exit_code == 0, mapped.output
    assert ("train.py reads __file__: in the kernel it is /kaggle/input/datasets/me/names/train.py (the dataset "
            "source me/names, mapped from . here), so the files next to the script are read from that source"
            ) in mapped.stderr

    pushed = folder.kjob("push", "names", "--backend", "local", "--wait")
    assert pushed.exit_code == 0, pushed.output
    log = (folder.root / "downloads/names/local-v1/log.txt").read_text()
    # /kaggle/input/... where the run sees Kaggle's paths (bubblewrap), else under KAGGLE_INPUT_DIR
    assert re.search(r"kjob: __file__ = \S*/datasets/me/names/train.py\n", log), log
    assert "3 names, 2 extra, 3 epochs" in log
    assert (folder.root / "train.py").read_bytes() == code
