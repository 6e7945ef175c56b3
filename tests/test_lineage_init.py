"""`kjob init` guesses the recipe's resume parameter (issue 23): a `--resume`-like option of a
script, or argument of a function, with a string default becomes `[resume] parameter`, so that
`kjob push NAME --resume-from vN` works on an initialised project without editing the recipe."""

import tomllib

from test_init import folder  # noqa: F401 (the fixture)

SCRIPT = '''
import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--resume-from", default="")
args = parser.parse_args()
start = 0
if args.resume_from:
    start = json.load(open(os.path.join(args.resume_from, "state.json")))["epoch"]
for epoch in range(start, args.epochs):
    print("epoch", epoch + 1)
with open("state.json", "w") as f:
    json.dump({"epoch": args.epochs}, f)
'''


def recipe(ws, name):
    return tomllib.loads((ws.root / f"builders/{name}.toml").read_text())


def test_init_guesses_the_resume_parameter_and_resume_from_uses_it(folder):  # noqa: F811
    folder.write("train.py", SCRIPT)
    made = folder.kjob("init", "--entry", "train.py", "--name", "train", "--owner", "alice")
    assert made.exit_code == 0, made.output
    assert "; resume parameter resume_from" in made.output
    assert recipe(folder, "train")["resume"] == {"parameter": "resume_from"}
    assert folder.kjob("push", "train", "--wait").exit_code == 0
    resumed = folder.kjob("push", "train", "-p", "epochs=3", "--resume-from", "v1", "--wait")
    assert resumed.exit_code == 0, resumed.output
    assert "epoch 3" in resumed.output and "epoch 1" not in resumed.output  # it went on from epoch 2


def test_init_writes_no_resume_table_without_such_a_parameter(folder):  # noqa: F811
    folder.write("src/pkg/job.py", 'def main(steps=3, resumed_label="x", resume=0):\n    print(steps)\n')
    made = folder.kjob("init", "--entry", "src/pkg/job.py:main", "--name", "job")
    assert made.exit_code == 0, made.output
    assert "resume" not in recipe(folder, "job")  # `resume` is a number here, `resumed_label` another word
    assert "resume parameter" not in made.output
