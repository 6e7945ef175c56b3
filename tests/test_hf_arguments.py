"""A script in the shape of Hugging Face's examples (run_classification.py, run_glue.py): its options
are the fields of its own dataclasses, given to transformers' HfArgumentParser with TrainingArguments.
Init reads them statically, the build passes them as HfArgumentParser takes them, and a
TrainingArguments option added by hand to the recipe is accepted and passed (issue 21).
transformers is not needed: it is on Kaggle's image, and nothing here runs the script."""

import ast
import io
import json
import sys
import tomllib
from contextlib import redirect_stdout

import pytest

from conftest import Workspace, stranger_folder
from kjob.build.script_commands import read_options

# The shape of transformers' examples/pytorch/text-classification/run_classification.py, trimmed.
RUN_CLS = '''
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import transformers
from transformers import HfArgumentParser, Trainer, TrainingArguments, set_seed

logger = logging.getLogger(__name__)


@dataclass
class DataTrainingArguments:
    """Arguments pertaining to what data we are going to input our model for training and eval."""

    dataset_name: Optional[str] = field(default=None, metadata={"help": "The name of the dataset to use."})
    do_regression: bool = field(default=None, metadata={"help": "Regression instead of classification."})
    max_seq_length: int = field(default=128, metadata={"help": "The maximum total input sequence length."})
    pad_to_max_length: bool = field(default=True, metadata={"help": "Whether to pad all samples."})
    shuffle_train_dataset: bool = field(default=False, metadata={"help": "Whether to shuffle the train dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training examples."})
    train_file: str | None = field(default=None, metadata={"help": "A csv or a json file of training data."})


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Path to pretrained model or model identifier"})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Whether to use a fast tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "The model version to use."})
    token: str = field(default=None, metadata={"help": "The token for remote files."})


def main():
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(sys.argv[1]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses()
    set_seed(training_args.seed)
    logger.info(f"{model_args} {data_args}")


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Workspace:
    ws = stranger_folder(tmp_path, monkeypatch)
    ws.write("run_cls.py", RUN_CLS)
    return ws


def command_line(ws: Workspace, name: str, monkeypatch) -> list[str]:
    """The command line the built kernel gives the script: its parameters cell and argv cell, run."""
    cells = json.loads((ws.root / f"kernels/{name}/{name}.ipynb").read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the argv cell sets it
    with redirect_stdout(io.StringIO()) as printed:
        exec("".join(code[0]["source"]) + "\n" + "".join(code[1]["source"]), {})
    assert printed.getvalue() == "kjob: python " + " ".join(sys.argv) + "\n"
    return list(sys.argv)


def test_init_reads_the_dataclass_fields_and_the_training_arguments_a_kernel_needs(folder):
    init = folder.kjob("init", "--entry", "run_cls.py", "--name", "cls")
    assert init.exit_code == 0, init.output
    assert ("parameters use_fast_tokenizer, model_revision, max_seq_length, pad_to_max_length, "
            "shuffle_train_dataset, output_dir, max_steps, report_to; smoke parameters max_steps=2") in init.stdout
    assert "skipped parameter model_name_or_path: no default (required: set it here" in init.stdout
    assert "skipped parameter do_regression: default None" in init.stdout
    text = (folder.root / "builders/cls.toml").read_text()
    made = tomllib.loads(text)
    assert made["parameters"] == {
        "use_fast_tokenizer": True, "model_revision": "main", "max_seq_length": 128, "pad_to_max_length": True,
        "shuffle_train_dataset": False, "output_dir": "trainer_output", "max_steps": -1, "report_to": "none"}
    assert made["smoke"]["parameters"] == {"max_steps": 2}
    assert "# num_train_epochs = 3.0\n# learning_rate = 5e-05\n" in text  # TrainingArguments' others, by hand
    assert "# do_train = true\n# do_eval = true\n" in text

    refused = folder.kjob("build", "cls")
    assert refused.exit_code == 3
    assert "run_cls.py: the script requires model_name_or_path: give it with -p model_name_or_path=..." \
        in refused.stderr


def test_the_command_line_is_the_one_hf_argument_parser_takes(folder, monkeypatch):
    assert folder.kjob("init", "--entry", "run_cls.py", "--name", "cls").exit_code == 0
    built = folder.kjob("build", "cls", "-p", "model_name_or_path=/kaggle/input/tiny-bert", "-p", "max_seq_length=64",
                        "-p", "use_fast_tokenizer=false", "-p", "shuffle_train_dataset=true", "-p",
                        "do_regression=false", "-p", "max_train_samples=8")
    assert built.exit_code == 0, built.output
    assert "not among the options" not in built.output
    assert command_line(folder, "cls", monkeypatch) == [
        "run_cls.py", "--no_use_fast_tokenizer", "--model_revision", "main", "--max_seq_length", "64",
        "--pad_to_max_length", "--shuffle_train_dataset", "--output_dir", "trainer_output", "--max_steps", "-1",
        "--report_to", "none", "--model_name_or_path", "/kaggle/input/tiny-bert", "--do_regression", "False",
        "--max_train_samples", "8"]

    bad = folder.kjob("build", "cls", "-p", "max_seq_length=long")
    assert bad.exit_code == 2 and "parameter 'max_seq_length' expects int, got 'long'" in bad.stderr


def test_a_training_arguments_option_added_by_hand_is_accepted_and_passed(folder, monkeypatch):
    assert folder.kjob("init", "--entry", "run_cls.py", "--name", "cls").exit_code == 0
    unknown = folder.kjob("build", "cls", "-p", "learning_rate=0.001")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip().endswith(
        "; a TrainingArguments option is added by hand under [parameters] in builders/cls.toml (learning_rate = ...),"
        " then passed as --learning_rate VALUE")

    path = folder.root / "builders/cls.toml"
    text = path.read_text().replace("# learning_rate = 5e-05", "learning_rate = 5e-05")
    path.write_text(text.replace("# do_train = true", "do_train = true").replace(
        'report_to = "none"', 'report_to = "none"\nlabel_names = ["labels"]\nmodel_name_or_path = "tiny"'))
    built = folder.kjob("build", "cls", "-p", "learning_rate=0.001", "-p", "do_train=false")
    assert built.exit_code == 0, built.output
    argv = command_line(folder, "cls", monkeypatch)
    assert argv[argv.index("--report_to"):] == [
        "--report_to", "none", "--label_names", "labels", "--model_name_or_path", "tiny", "--learning_rate", "0.001",
        "--do_train", "False"]


def test_a_parameter_added_by_hand_to_an_argparse_script_is_passed_with_a_note(folder, monkeypatch):
    folder.write("train.py", '''
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=3)
        for name in ("lr", "wd"):  # options kjob cannot read
            parser.add_argument("--" + name, type=float, default=0.0)
        print(parser.parse_args())
        ''')
    assert folder.kjob("init", "--entry", "train.py", "--name", "t").exit_code == 0
    path = folder.root / "builders/t.toml"
    path.write_text(path.read_text().replace("epochs = 3", "epochs = 3\nlr = 0.5"))
    built = folder.kjob("build", "t", "-p", "lr=0.25")
    assert built.exit_code == 0, built.output
    assert "train.py: lr is not among the options kjob read from the script: passed as --lr VALUE" in built.output
    assert command_line(folder, "t", monkeypatch) == ["train.py", "--epochs", "3", "--lr", "0.25"]


FIELDS = '''
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar, List, Literal, Optional

from transformers import HfArgumentParser, HfArg, Seq2SeqTrainingArguments


class Pooling(str, Enum):
    mean = "mean"
    first = "first"


@dataclass
class Base:
    compile: bool
    flag: bool
    seed_text: str = "hello"


@dataclass
class Script(Base):
    compile: bool = True
    layers: List[int] = field(default_factory=lambda: [2, 2])
    tags: list[str] = field(default_factory=list)
    mode: Literal["fast", "slow"] = "fast"
    pooling: Pooling = Pooling.first
    warm: "Optional[bool]" = None
    scale: float = 1
    alias: str = HfArg(default="x", aliases=["--a"], help="an alias")
    steps_seen: int = field(default=0, init=False)
    registry: ClassVar[dict] = {}
    _private: int = 0
    lr: float = field(default=5e-5, metadata={"help": "given"})


@dataclass
class MyTrainingArguments(Seq2SeqTrainingArguments):
    output_dir: str = "out"
    warmup_text: float = 1e-3


parser = HfArgumentParser(dataclass_types=[Script, MyTrainingArguments])
'''


def test_each_field_shape_as_hf_argument_parser_reads_it():
    options = {o.name: o for o in read_options(ast.parse(FIELDS))}
    assert list(options) == ["compile", "flag", "seed_text", "layers", "tags", "mode", "pooling", "warm", "scale",
                             "alias", "lr", "output_dir", "max_steps", "report_to", "warmup_text"]
    shape = {n: (o.flag, o.how, o.kind, o.default, o.why, o.choices) for n, o in options.items()}
    assert shape["layers"] == ("--layers", "many", "list", [2, 2], None, None)
    assert shape["tags"][1:3] == ("many", "list") and shape["tags"][4].startswith("default []")
    assert shape["mode"] == ("--mode", "value", "str", "fast", None, ("fast", "slow"))
    assert shape["pooling"] == ("--pooling", "value", "str", "first", None, ("mean", "first"))
    assert shape["warm"] == ("--warm", "value", "bool", None, "default None", None)  # --warm true / false
    assert shape["compile"] == ("--compile/--no_compile", "both", "bool", True, None, None)  # Script's default
    assert shape["flag"] == ("--flag", "true", "bool", False, None, None)  # a bool with no default is false
    assert shape["scale"][2:4] == ("float", 1.0)
    assert shape["alias"][:4] == ("--alias", "value", "str", "x")
    assert (options["output_dir"].default, options["output_dir"].group) == ("out", "MyTrainingArguments")
    assert {options[n].group for n in ("max_steps", "report_to")} == {"TrainingArguments"}
    assert options["seed_text"].default == "hello"  # a base dataclass's field


def test_the_built_command_line_parses_with_transformers_when_it_is_installed(folder, monkeypatch):
    """With transformers where the tests run (not a dependency: a side environment), its own
    HfArgumentParser parses the built command line with nothing left over."""
    transformers = pytest.importorskip("transformers")
    assert folder.kjob("init", "--entry", "run_cls.py", "--name", "cls").exit_code == 0
    path = folder.root / "builders/cls.toml"
    path.write_text(path.read_text().replace("# num_train_epochs = 3.0", "num_train_epochs = 3.0"))
    assert folder.kjob("build", "cls", "-p", "model_name_or_path=tiny", "-p", "use_fast_tokenizer=false", "-p",
                       "do_regression=true", "-p", "num_train_epochs=1").exit_code == 0
    argv = command_line(folder, "cls", monkeypatch)
    scope = {}
    exec(compile(RUN_CLS.replace('if __name__ == "__main__":', "if False:"), "run_cls.py", "exec"), scope)
    parser = transformers.HfArgumentParser((scope["ModelArguments"], scope["DataTrainingArguments"],
                                            transformers.TrainingArguments))
    parsed, left = parser.parse_known_args(argv[1:])
    assert left == []
    assert (parsed.model_name_or_path, parsed.use_fast_tokenizer, parsed.do_regression, parsed.num_train_epochs,
            parsed.report_to, parsed.max_steps, parsed.pad_to_max_length) == ("tiny", False, True, 1.0, "none", -1,
                                                                              True)


# The shape of texttron/tevatron's examples/dse/qwen/train.py: the dataclasses in a sibling module,
# a TrainingArguments subclass imported under TrainingArguments' own name.
IMPORTED_TRAIN = '''
from transformers import HfArgumentParser

import extra
from arguments import ModelArguments, DataArguments, TevatronTrainingArguments as TrainingArguments


def main():
    parser = HfArgumentParser((ModelArguments, DataArguments, extra.ExtraArguments, TrainingArguments))
    model_args, data_args, extra_args, training_args = parser.parse_args_into_dataclasses()


if __name__ == "__main__":
    main()
'''

IMPORTED_ARGUMENTS = '''
from dataclasses import dataclass, field
from typing import Optional

from transformers import TrainingArguments

from shared.base import BaseData


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "the model"})
    pooling: str = field(default="cls")
    normalize: bool = field(default=False)


@dataclass
class DataArguments(BaseData):
    query_max_len: Optional[int] = field(default=32)


@dataclass
class TevatronTrainingArguments(TrainingArguments):
    warmup_ratio: float = field(default=0.1)
    grad_cache: bool = field(default=False)
'''


def test_dataclasses_imported_from_the_project_s_modules_are_read(folder, monkeypatch):
    folder.write("arguments.py", IMPORTED_ARGUMENTS)
    folder.write("extra.py", "from dataclasses import dataclass\n\n\n@dataclass\nclass ExtraArguments:\n"
                             "    seed_offset: int = 3\n")
    folder.write("shared/__init__.py", "")
    folder.write("shared/base.py", "from dataclasses import dataclass\n\n\n@dataclass\nclass BaseData:\n"
                                   "    dataset_name: str = 'json'\n")
    folder.write("train.py", IMPORTED_TRAIN)
    init = folder.kjob("init", "--entry", "train.py", "--name", "imp")
    assert init.exit_code == 0, init.output
    made = tomllib.loads((folder.root / "builders/imp.toml").read_text())
    assert made["parameters"] == {
        "pooling": "cls", "normalize": False, "dataset_name": "json", "query_max_len": 32, "seed_offset": 3,
        "output_dir": "trainer_output", "max_steps": -1, "report_to": "none", "warmup_ratio": 0.1,
        "grad_cache": False}
    assert folder.kjob("build", "imp", "-p", "model_name_or_path=m", "-p", "grad_cache=true").exit_code == 0
    assert command_line(folder, "imp", monkeypatch)[-7:] == [
        "--report_to", "none", "--warmup_ratio", "0.1", "--grad_cache", "--model_name_or_path", "m"]
