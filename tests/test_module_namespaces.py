"""A project whose modules cannot share one namespace (relative imports, a `logger` and a `main`
in several modules: the shape of most packaged training code) runs unchanged with
namespaces = "modules": each module's cell runs as the module Python would import (issue 21)."""

import json
import tomllib

import pytest

from conftest import Workspace, stranger_folder

FILES = {
    "proj/__init__.py": "from .version import VERSION\n",
    "proj/version.py": 'VERSION = "0.3"\n',
    "proj/utils.py": '''
        import logging

        logger = logging.getLogger(__name__)


        def main():  # the module's own demo, never the training
            raise SystemExit("utils.main is not the training")


        def scale(values, factor):
            logger.info("scaling %d values", len(values))
            return [v * factor for v in values]
    ''',
    "proj/models/__init__.py": "from .linear import Linear\nfrom . import linear\n",
    "proj/models/linear.py": '''
        import logging

        from ..utils import scale

        logger = logging.getLogger(__name__)


        class Linear:
            def __init__(self, weight):
                self.weight = weight

            def __call__(self, xs):
                if self.weight < 0:
                    raise ValueError("negative weight")
                return scale(xs, self.weight)


        if __name__ == "__main__":
            print("never in a kernel")
    ''',
    "proj/fit.py": '''
        import logging

        from .models import Linear

        logger = logging.getLogger(__name__)


        def fit(steps=3, weight=0.5):
            loss = 4.0
            for _ in range(steps):
                loss = sum(Linear(weight)([loss]))
            print(f"fit: {logger.name} loss {loss}")
            return loss
    ''',
    "train.py": '''
        import argparse
        import json
        import logging

        import proj.utils as utils
        from proj import VERSION
        from proj.models import Linear, linear

        logger = logging.getLogger(__name__)


        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--steps", type=int, default=5)
            parser.add_argument("--weight", type=float, default=0.5)
            args = parser.parse_args()
            model, loss = Linear(args.weight), 10.0
            with open("metrics.jsonl", "w") as log:
                for step in range(1, args.steps + 1):
                    loss = sum(model([loss]))
                    log.write(json.dumps({"step": step, "train_loss": loss}) + "\\n")
            print(f"version {VERSION}; {linear.__name__}; loggers {utils.logger.name} {logger.name}; loss {loss}")


        if __name__ == "__main__":
            main()
    ''',
}


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Workspace:
    ws = stranger_folder(tmp_path, monkeypatch)
    for rel, text in FILES.items():
        ws.write(rel, text)
    return ws


def printed(ws: Workspace, name: str) -> str:
    executed = json.loads((ws.root / f".kjob/smoke/{name}/executed.ipynb").read_text())
    return "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))


def test_init_runs_each_module_as_its_own_and_the_script_runs_unchanged(folder):
    code = {rel: (folder.root / rel).read_bytes() for rel in FILES}
    init = folder.kjob("init", "--entry", "train.py", "--name", "pk")
    assert init.exit_code == 0, init.output
    assert 'namespaces = "modules": each module runs as its own (a relative import at proj/__init__.py:1)' \
        in init.stdout
    made = tomllib.loads((folder.root / "builders/pk.toml").read_text())
    assert made["namespaces"] == "modules"
    assert made["modules"][-1] == "train.py" and "proj/models/linear.py" in made["modules"]

    built = folder.kjob("build", "pk", "--smoke")
    assert built.exit_code == 0, built.output
    # Each module its own: its own logger, its package's relative imports, `import a.b as c`.
    assert "version 0.3; proj.models.linear; loggers proj.utils __main__; loss 2.5" in printed(folder, "pk")
    assert {rel: (folder.root / rel).read_bytes() for rel in FILES} == code

    pushed = folder.kjob("push", "pk", "--backend", "local", "--wait", "-p", "weight=-1")
    assert pushed.exit_code == 1, pushed.output
    status = json.loads(folder.kjob("status", "pk", "--json").stdout)
    assert (status["failure_location"], status["failure_message"]) == ("proj/models/linear.py:14",
                                                                       "ValueError: negative weight")


def test_one_shared_namespace_refuses_the_project_and_says_how_to_run_it(folder):
    assert folder.kjob("init", "--entry", "train.py", "--name", "pk").exit_code == 0
    path = folder.root / "builders/pk.toml"
    path.write_text(path.read_text().replace('namespaces = "modules"', 'namespaces = "shared"'))
    refused = folder.kjob("build", "pk")
    assert refused.exit_code == 3
    assert ("proj/models/linear.py:3: relative imports cannot be inlined into one namespace; use 'from "
            "package.module import name', or namespaces = \"modules\" in the recipe") in refused.stderr
    assert ("train.py:12: 'main' is also defined at proj/utils.py:6; inlined modules share one namespace "
            "(namespaces = \"modules\" in the recipe runs each module as its own)") in refused.stderr
    path.write_text(path.read_text().replace('namespaces = "shared"', 'namespaces = "both"'))
    bad = folder.kjob("build", "pk")
    assert bad.exit_code != 0 and "namespaces" in bad.stderr and "'modules'" in bad.stderr


def test_a_function_entry_in_a_package_is_imported_from_its_module(folder):
    init = folder.kjob("init", "--entry", "proj/fit.py:fit", "--name", "fit")
    assert init.exit_code == 0, init.output
    built = folder.kjob("build", "fit", "--smoke", "-p", "steps=2")
    assert built.exit_code == 0, built.output
    assert "fit: proj.fit loss 1.0" in printed(folder, "fit")


def test_a_name_one_module_uses_from_another_without_importing_it_is_refused_at_its_line(folder):
    """Each module is checked on its own: in one namespace the other module's name would hide the mistake."""
    folder.write("proj/fit.py", FILES["proj/fit.py"].replace("loss = 4.0", "loss = scale([4.0], 1)[0]"))
    assert folder.kjob("init", "--entry", "proj/fit.py:fit", "--name", "fit").exit_code == 0
    refused = folder.kjob("build", "fit")
    assert refused.exit_code == 3
    assert "proj/fit.py:9: undefined name 'scale'" in refused.stderr
