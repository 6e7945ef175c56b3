"""`kjob build` and `kjob builders` on small throw-away workspaces."""

import json
import subprocess
import sys

import nbformat
import pytest
from slugify import slugify as reference_slugify

from kjob.build.kernel_metadata import slugify, validate_kernel_metadata
from kjob.notebook import program


def load_notebook(ws, name="tiny"):
    return json.loads((ws.root / f"kernels/{name}/{name}.ipynb").read_text())


def test_build_writes_a_valid_kernel_folder(tiny):
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output
    assert "built kernels/tiny" in result.stdout

    meta = json.loads((tiny.root / "kernels/tiny/kernel-metadata.json").read_text())
    assert meta["id"] == "alice/tiny-kernel"
    assert reference_slugify(meta["title"]) == "tiny-kernel"
    assert (tiny.root / "kernels/tiny" / meta["code_file"]).is_file()
    assert (meta["language"], meta["kernel_type"]) == ("python", "notebook")
    for key in ("is_private", "enable_gpu", "enable_internet"):
        assert isinstance(meta[key], bool)
    assert "machine_shape" in meta
    assert meta["dataset_sources"] == ["someone/some-data"]
    assert validate_kernel_metadata(meta, tiny.root / "kernels/tiny") == []

    nb = load_notebook(tiny)
    nbformat.validate(nbformat.from_dict(nb))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["language_info"]["name"] == "python"
    assert all(isinstance(cell["source"], str) for cell in nb["cells"])
    kinds = [cell["cell_type"] for cell in nb["cells"]]
    assert kinds == ["markdown", "code", "code", "code", "code"]
    assert nb["cells"][2]["source"].startswith("# ---- src/pkg/util.py ----\n")
    assert nb["cells"][3]["source"].startswith("# ---- src/pkg/job.py ----\n")
    assert "result = main(" in nb["cells"][-1]["source"]

    record = json.loads((tiny.root / "kernels/tiny/build.json").read_text())
    assert [s["path"] for s in record["sources"]] == ["src/pkg/util.py", "src/pkg/job.py"]
    assert record["parameters"]["steps"] == 3
    assert nb["metadata"]["kjob"]["sources"] == record["sources"]


def test_same_sources_and_parameters_give_identical_bytes(tiny):
    assert tiny.kjob("build", "tiny", "-p", "steps=7").exit_code == 0
    first = tiny.snapshot("kernels/tiny")
    result = tiny.kjob("build", "tiny", "-p", "steps=7")
    assert "notebook unchanged" in result.stdout
    assert tiny.snapshot("kernels/tiny") == first
    assert tiny.kjob("build", "tiny", "-p", "steps=8").exit_code == 0
    assert tiny.snapshot("kernels/tiny")["tiny.ipynb"] != first["tiny.ipynb"]


def test_parameters_are_typed_and_replace_the_tagged_cell(tiny):
    result = tiny.kjob("build", "tiny", "-p", "steps=5", "-p", "rate=2", "-p", "fail=no", "-p", "label=a b")
    assert result.exit_code == 0, result.output
    nb = load_notebook(tiny)
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    namespace = {}
    exec(tagged[0]["source"], namespace)
    assert (namespace["steps"], namespace["rate"], namespace["fail"], namespace["label"]) == (5, 2.0, False, "a b")
    assert isinstance(namespace["rate"], float)
    assert nb["metadata"]["kjob"]["overrides"] == {"steps": 5, "rate": 2.0, "fail": False, "label": "a b"}


@pytest.mark.parametrize("args, message", [
    (["-p", "nope=1"], "unknown parameter 'nope'"),
    (["-p", "steps=many"], "parameter 'steps' expects int"),
    (["-p", "fail=maybe"], "parameter 'fail' expects bool"),
    (["-p", "steps"], "-p expects key=value"),
])
def test_bad_parameters_are_usage_errors(tiny, args, message):
    result = tiny.kjob("build", "tiny", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tiny.root / "kernels").exists()


def test_unknown_recipe_is_not_found(tiny):
    result = tiny.kjob("build", "nosuch")
    assert result.exit_code == 4
    assert "no recipe 'nosuch'" in result.stderr and "tiny" in result.stderr


BREAKAGES = {
    "syntax error": ("    return values\n", "    return values +\n", "src/pkg/job.py:15: syntax error"),
    "undefined name": ("    return values\n", "    return valuez\n", "src/pkg/job.py:15: undefined name 'valuez'"),
    "unavailable import": ("import time\n", "import time\nimport kjob\n", "src/pkg/job.py:4: imports 'kjob'"),
    "credential": (
        "import time\n",
        "import time\nKAGGLE_TOKEN = 'KGAT_" + "0f" * 16 + "'\n",
        "src/pkg/job.py:4: looks like a Kaggle API token",
    ),
    "missing sibling": ("from pkg.util import scale\n", "from pkg.util import scale\nfrom pkg.other import thing\n", "src/pkg/job.py:5: imports pkg.other"),
}


@pytest.mark.parametrize("kind", sorted(BREAKAGES))
def test_a_broken_module_names_its_line_and_keeps_the_old_kernel(tiny, kind):
    assert tiny.kjob("build", "tiny").exit_code == 0
    before = tiny.snapshot("kernels")
    old, new, expected = BREAKAGES[kind]
    job = tiny.root / "src/pkg/job.py"
    job.write_text(job.read_text().replace(old, new, 1))

    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert "0f0f0f0f" not in result.output  # a credential is named, never shown
    assert tiny.snapshot("kernels") == before  # no staging leftovers either


def test_names_defined_in_two_modules_collide(tiny):
    tiny.write("src/pkg/job.py", TINY_JOB_WITH_COLLISION)
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3
    assert "src/pkg/job.py:4: 'scale' is also defined at src/pkg/util.py:5" in result.stderr


TINY_JOB_WITH_COLLISION = '''
import json


def scale(x, rate):
    return x


def main(steps, rate, label, fail, sleep):
    return json.dumps([scale(1, rate)])
'''


def test_aliases_and_main_guards_inline_without_moving_lines(tiny):
    tiny.write("src/pkg/job.py", '''
        import json
        from pkg.util import scale as sc


        def main(steps, rate, label, fail, sleep):
            with open("result.json", "w") as f:
                json.dump({"values": [sc(i, rate) for i in range(steps)]}, f)
            if fail:
                raise ValueError("line 9")


        if __name__ == "__main__":
            main(1, 1.0, "x", False, 0.0)
    ''')
    result = tiny.kjob("build", "tiny", "-p", "fail=true", "--smoke")
    assert result.exit_code == 1
    assert "src/pkg/job.py:9: ValueError: line 9" in result.stderr
    cell = load_notebook_smoke(tiny)
    assert "sc = scale  # from pkg.util import scale as sc" in cell


def load_notebook_smoke(tiny):
    nb = json.loads((tiny.root / ".kjob/smoke/tiny/executed.ipynb").read_text())
    return next(c["source"] for c in nb["cells"] if c["id"] == "src-pkg-job-py")


def test_smoke_runs_the_notebook_with_smoke_parameters(tiny):
    result = tiny.kjob("build", "tiny", "-p", "label=mine", "--smoke")
    assert result.exit_code == 0, result.output
    assert "smoke run passed" in result.stdout
    produced = json.loads((tiny.root / ".kjob/smoke/tiny/working/result.json").read_text())
    assert (produced["label"], produced["values"]) == ("mine", [0])  # smoke's steps=1, the user's label
    record = json.loads((tiny.root / "kernels/tiny/build.json").read_text())
    assert record["smoke"]["passed"] is True
    # The kernel itself keeps the build's parameters, not the smoke ones.
    assert "steps = 3" in load_notebook(tiny)["cells"][1]["source"]


def test_a_failing_smoke_run_names_the_src_line_and_writes_nothing(tiny):
    assert tiny.kjob("build", "tiny").exit_code == 0
    before = tiny.snapshot("kernels")
    result = tiny.kjob("build", "tiny", "-p", "fail=true", "--smoke")
    assert result.exit_code == 1
    assert "src/pkg/job.py:11: RuntimeError: asked to fail" in result.stderr
    assert "kernels/tiny left unchanged" in result.stderr
    assert tiny.snapshot("kernels") == before
    executed = json.loads((tiny.root / ".kjob/smoke/tiny/executed.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"


def test_a_smoke_run_over_its_time_limit_is_stopped(tiny):
    recipe = tiny.root / "builders/tiny.toml"
    recipe.write_text(recipe.read_text().replace("timeout = 60", "timeout = 3"))
    result = tiny.kjob("build", "tiny", "-p", "sleep=30", "--smoke")
    assert result.exit_code == 1
    assert "(timeout)" in result.stderr and "time limit of 3 s" in result.stderr


def test_owner_comes_from_configuration_and_environment(tiny):
    assert tiny.kjob("build", "tiny", env={"KJOB_OWNER": "bob"}).exit_code == 0
    meta = json.loads((tiny.root / "kernels/tiny/kernel-metadata.json").read_text())
    assert meta["id"] == "bob/tiny-kernel"
    tiny.write("kjob.toml", 'owner = "carol"\n')
    assert tiny.kjob("build", "tiny").exit_code == 0
    meta = json.loads((tiny.root / "kernels/tiny/kernel-metadata.json").read_text())
    assert meta["id"] == "carol/tiny-kernel"


def test_a_title_that_does_not_slugify_to_the_slug_is_refused(tiny):
    recipe = tiny.root / "builders/tiny.toml"
    recipe.write_text(recipe.read_text().replace('title = "Tiny Kernel"', 'title = "Tiny Kernel v2"'))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3
    assert "slugifies to 'tiny-kernel-v2'" in result.stderr
    assert not (tiny.root / "kernels/tiny").exists()


@pytest.mark.parametrize("title", ["R3 DPT", "CRN Baseline", "Café   Noise -- Test!", "it's a  title_x"])
def test_slugify_matches_the_official_client(title):
    assert slugify(title) == reference_slugify(title)


def test_builders_lists_each_recipe_on_one_line(tiny):
    tiny.write("builders/other.toml", 'title = "Other One"\nmodules = ["pkg/util.py"]\nentry = "scale"\n')
    result = tiny.kjob("builders")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["other", "tiny"]


def test_commands_that_need_no_torch_do_not_import_it(tiny):
    code = (
        "import sys\n"
        "from kjob.cli import cli\n"
        "for args in (['--help'], ['builders'], ['build', 'tiny'], ['status'], ['runs'], ['push', '--help']):\n"
        "    try:\n"
        "        cli(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (args, e.code)\n"
        "heavy = [m for m in ('torch', 'nbclient', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tiny.root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, message", [
    (["-p", "rate=1e400"], "parameter 'rate' expects float"),
    (["-p", "steps=1", "-p", "steps=2"], "parameter 'steps' is set twice"),
])
def test_values_a_notebook_cannot_hold_are_refused(tiny, args, message):
    result = tiny.kjob("build", "tiny", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_recipe_names_cannot_leave_builders(tiny):
    result = tiny.kjob("build", "../builders/tiny")
    assert result.exit_code == 2 and "is not a recipe name" in result.stderr
    assert not list(tiny.root.glob("builders/.*"))


def test_recipe_flags_must_be_booleans(tiny):
    recipe = tiny.root / "builders/tiny.toml"
    recipe.write_text(recipe.read_text().replace('accelerator = "none"', 'accelerator = "none"\ninternet = "false"'))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 2
    assert "builders/tiny.toml: internet: expected true or false, not 'false'" in result.stderr


# A module of another top-level folder (the layout kernels/ builders/ src/ eval/ tests/): eval/ is
# its import root. Its package's __init__ is not inlined: the guarded import falls back.
SCORER = '''
"""Scores, as the evaluator computes them."""
try:
    from scorer import SCALE
except ImportError:  # inlined into a notebook, where no scorer package is installed
    SCALE = 100


def score(values):
    return sum(values) * SCALE
'''


def inline_scorer(tiny, modules='"pkg/util.py", "../eval/scorer/metrics.py", "pkg/job.py"'):
    tiny.write("eval/scorer/__init__.py", "SCALE = 100\n")
    tiny.write("eval/scorer/metrics.py", SCORER)
    job = tiny.root / "src/pkg/job.py"
    job.write_text(job.read_text().replace("from pkg.util import scale\n",
                                           "from pkg.util import scale\nfrom scorer.metrics import score\n")
                   .replace('"values": values,', '"values": values, "score": score(values),'))
    recipe = tiny.root / "builders/tiny.toml"
    recipe.write_text(recipe.read_text().replace('modules = ["pkg/util.py", "pkg/job.py"]', f"modules = [{modules}]"))


def test_a_module_of_another_top_level_folder_is_inlined_under_its_package(tiny):
    inline_scorer(tiny)
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output
    # The notebook's code cells run as one program away from the workspace: what a smoke run does, faster.
    run = tiny.root / "run"
    run.mkdir()
    (run / "notebook.py").write_text(program(load_notebook(tiny))[0])
    done = subprocess.run([sys.executable, "notebook.py"], cwd=run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "result.json").read_text())["score"] == (0 + 5 + 10) * 100
    record = json.loads((tiny.root / "kernels/tiny/build.json").read_text())
    assert [s["path"] for s in record["sources"]] == ["src/pkg/util.py", "eval/scorer/metrics.py", "src/pkg/job.py"]
    cells = {c["id"]: c["source"] for c in load_notebook(tiny)["cells"]}
    assert cells["src-eval-scorer-metrics-py"].startswith("# ---- eval/scorer/metrics.py ----\n")
    assert "# from scorer.metrics import score" in cells["src-pkg-job-py"]
    assert "    from scorer import SCALE" in cells["src-eval-scorer-metrics-py"]  # guarded: left as it is


def test_an_unlisted_module_of_another_folder_names_the_entry_to_add(tiny):
    inline_scorer(tiny, modules='"pkg/util.py", "pkg/job.py"')
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3
    assert ("a module of this project (eval/scorer/metrics.py) that is not among the recipe's modules: add "
            '"../eval/scorer/metrics.py" to modules in builders/tiny.toml') in result.stderr


@pytest.mark.parametrize("entry", ["../../x.py", "../eval/../x.py", "../x.py", "../eval//x.py", "eval/../x.py"])
def test_module_paths_leaving_their_folder_are_refused(tiny, entry):
    inline_scorer(tiny, modules=f'"pkg/util.py", "{entry}", "pkg/job.py"')
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: builders/tiny.toml: modules: expected .py paths relative to src/, or ../FOLDER/path.py in "
        f"another top-level folder (no other '..'), not '{entry}'"]


def test_a_folder_linked_outside_the_workspace_is_refused(tiny, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "x.py").write_text("X = 1\n")
    (tiny.root / "linked").symlink_to(outside, target_is_directory=True)
    inline_scorer(tiny, modules='"pkg/util.py", "../linked/x.py", "pkg/job.py"')
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 2
    assert f"builders/tiny.toml: modules: '../linked/x.py' leads outside the workspace, to {outside.resolve()}/x.py" \
        in result.stderr


@pytest.mark.parametrize("modules, message", [
    ('"../src/pkg/util.py", "pkg/job.py"', "'../src/pkg/util.py' is in the source folder: write it as 'pkg/util.py'"),
    ('"pkg/util.py", "../eval/pkg/util.py", "pkg/job.py"', "'pkg/util.py' and '../eval/pkg/util.py' are both imported as pkg.util"),
], ids=["source folder", "twice"])
def test_a_module_named_twice_is_refused(tiny, modules, message):
    tiny.write("eval/pkg/util.py", "")
    inline_scorer(tiny, modules=modules)
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 2 and result.stderr.strip() == f"error: builders/tiny.toml: modules: {message}"
