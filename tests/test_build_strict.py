"""Every bad input to `kjob build` is one error line naming its file and key, with a
documented exit code; nothing is mis-filed (a parameter shadowed, a credential in the
metadata) and nothing is lost (concurrent builds, crashed builds)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kjob.build.plan import plan_build
from kjob.errors import ConfigError
from kjob.workspace import find_workspace, load_config

HEX32 = "0f" * 16  # shaped like a legacy Kaggle key


def edit(ws, rel: str, old: str, new: str) -> None:
    path = ws.root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def one_line_error(result, code: int, *fragments: str) -> str:
    """The single `error:` line of a failed command, after checking its exit code."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# --- 1. recipe keys are type-checked ------------------------------------------------------

TOP = 'accelerator = "none"\n'  # a line of the tiny recipe's top-level table, to add keys after

RECIPE_CASES = {
    "title number": ('title = "Tiny Kernel"', "title = 12345", "title: expected a one-line string, not 12345"),
    "accelerator list": ('accelerator = "none"', 'accelerator = ["gpu"]',
                         "accelerator: expected one of 'gpu', 'tpu', 'none', not ['gpu']"),
    "smoke timeout text": ("timeout = 60", 'timeout = "abc"',
                           "[smoke] timeout: expected a whole number of seconds of at least 1, not 'abc'"),
    "smoke timeout bool": ("timeout = 60", "timeout = true", "[smoke] timeout: expected a whole number"),
    "smoke timeout negative": ("timeout = 60", "timeout = -5", "[smoke] timeout: expected a whole number"),
    "description": ('description = "two small modules"', "description = 5", "description: expected a string, not 5"),
    "slug number": ('slug = "tiny-kernel"', "slug = 7", "slug: expected lowercase letters, digits and single dashes, not 7"),
    "slug spaces": ('slug = "tiny-kernel"', 'slug = "Tiny Kernel"', "slug: expected lowercase letters"),
    "entry list": ('entry = "main"', 'entry = ["main"]', "entry: expected a function name, not ['main']"),
    "modules string": ('modules = ["pkg/util.py", "pkg/job.py"]', 'modules = "pkg/util.py"',
                       "modules: expected a non-empty list of .py paths relative to src/, not 'pkg/util.py'"),
    "modules item": ('modules = ["pkg/util.py", "pkg/job.py"]', 'modules = ["pkg/util.py", 3]', "modules: expected .py paths"),
    "modules escape": ('modules = ["pkg/util.py", "pkg/job.py"]', 'modules = ["../../etc/x.py"]',
                       "modules: expected .py paths relative to src/, or ../FOLDER/path.py in another top-level folder "
                       "(no other '..'), not '../../etc/x.py'"),
    "machine_shape": (TOP, TOP + "machine_shape = 4\n", "machine_shape: expected a Kaggle machine shape"),
    "sources string": ('dataset_sources = ["someone/some-data"]', 'dataset_sources = "someone/some-data"',
                       "dataset_sources: expected a list of strings, not 'someone/some-data'"),
    "sources item": ('dataset_sources = ["someone/some-data"]', "dataset_sources = [5]",
                     "dataset_sources: expected 'owner/slug' or 'owner/slug/version', not 5"),
    "kernel sources nested": (TOP, TOP + 'kernel_sources = [["a/b"]]\n', "kernel_sources: expected 'owner/slug'"),
    "competition sources": (TOP, TOP + "competition_sources = [1]\n", "competition_sources: expected a competition name, not 1"),
    "internet": (TOP, TOP + "internet = 1\n", "internet: expected true or false, not 1"),
    "private": (TOP, TOP + 'private = "yes"\n', "private: expected true or false, not 'yes'"),
    "session_timeout bool": (TOP, TOP + "session_timeout = true\n", "session_timeout: expected a whole number of seconds from 60"),
    "session_timeout text": (TOP, TOP + 'session_timeout = "3600"\n', "session_timeout: expected a whole number"),
    "parameter table": ("steps = 3", "steps = {a = 1}",
                        "[parameters] steps: expected a boolean, number, string or a list of those, not {'a': 1}"),
    "parameter date": ('label = "run"', "label = 1979-05-27", "[parameters] label: expected a boolean, number, string"),
    "parameter nested list": ('label = "run"', "label = [[1], [2]]", "[parameters] label: expected a list of booleans, numbers or strings"),
    "parameter nan": ("rate = 0.5", "rate = nan", "[parameters] rate: expected a finite number"),
    "parameter keyword": ("steps = 3", "steps = 3\nclass = 1", '[parameters] "class": a parameter name must be a Python identifier'),
    "smoke parameter type": ("[smoke.parameters]\nsteps = 1", '[smoke.parameters]\nsteps = "1"',
                             "[smoke.parameters] steps: expected an integer like the recipe's 3, not '1'"),
    "smoke parameter bool": ("[smoke.parameters]\nsteps = 1", "[smoke.parameters]\nsteps = true",
                             "[smoke.parameters] steps: expected an integer"),
    "smoke parameter unknown": ("[smoke.parameters]\nsteps = 1", "[smoke.parameters]\nnope = 1",
                                "[smoke.parameters] nope: not a recipe parameter (known: steps, rate"),
}


@pytest.mark.parametrize("case", sorted(RECIPE_CASES))
def test_every_recipe_key_is_type_checked(tiny, case):
    old, new, expected = RECIPE_CASES[case]
    edit(tiny, "builders/tiny.toml", old, new)
    one_line_error(tiny.kjob("build", "tiny"), 2, f"error: builders/tiny.toml: {expected}")
    assert not (tiny.root / "kernels").exists()


def test_smoke_parameters_take_an_int_for_a_float(tiny):
    edit(tiny, "builders/tiny.toml", "[smoke.parameters]\nsteps = 1", "[smoke.parameters]\nsteps = 1\nrate = 2")
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output


def test_a_bad_value_in_an_error_is_masked_when_it_looks_like_a_credential(tiny):
    token = "ghp_" + "A1b2" * 10
    edit(tiny, "builders/tiny.toml", 'slug = "tiny-kernel"', f'slug = "{token}"')
    line = one_line_error(tiny.kjob("build", "tiny"), 2, "builders/tiny.toml: slug: expected lowercase")
    assert token not in line and "A1b2A1b2" not in line


# --- 2. workspace configuration is type-checked ------------------------------------------

WORKSPACE_CASES = {
    "owner spaces": ('owner = "alice"', 'owner = "a b"',
                     "pyproject.toml: [tool.kjob] owner: expected a Kaggle user name (letters, digits, '-' and '_'), not 'a b'"),
    "owner number": ('owner = "alice"', "owner = 5", "pyproject.toml: [tool.kjob] owner: expected a Kaggle user name"),
    "owner slash": ('owner = "alice"', 'owner = "alice/x"', "pyproject.toml: [tool.kjob] owner: expected a Kaggle user name"),
    "dataset folder": ('"someone/some-data" = "data/some"', '"someone/some-data" = 5',
                       'pyproject.toml: [tool.kjob.datasets] "someone/some-data": expected a folder path (string), not 5'),
    "dataset key": ('"someone/some-data" = "data/some"', '"some-data" = "data/some"',
                    "pyproject.toml: [tool.kjob.datasets] some-data: expected a key 'owner/slug'"),
    "datasets not a table": ('[tool.kjob.datasets]\n"someone/some-data" = "data/some"', 'datasets = "data"',
                             "pyproject.toml: [tool.kjob] datasets: expected a table, not 'data'"),
    "target_modules string": ('owner = "alice"', 'owner = "alice"\ntarget_modules = "mylib"',
                              "pyproject.toml: [tool.kjob] target_modules: expected a list of module names, not 'mylib'"),
    "target_modules item": ('owner = "alice"', 'owner = "alice"\ntarget_modules = ["my lib"]',
                            "pyproject.toml: [tool.kjob] target_modules: expected top-level module names, not 'my lib'"),
    "local parameter": ("[tool.kjob.datasets]", '[tool.kjob.local.parameters]\ndevice = {a = 1}\n\n[tool.kjob.datasets]',
                        "pyproject.toml: [tool.kjob.local.parameters] device: expected a boolean, number, string"),
    "kaggle parameter": ("[tool.kjob.datasets]", "[tool.kjob.kaggle.parameters]\nrate = inf\n\n[tool.kjob.datasets]",
                         "pyproject.toml: [tool.kjob.kaggle.parameters] rate: expected a finite number"),
    "backend table key": ("[tool.kjob.datasets]", "[tool.kjob.kaggle]\nparams = 1\n\n[tool.kjob.datasets]",
                          "pyproject.toml: [tool.kjob.kaggle] unknown keys: params"),
    "unknown key": ('owner = "alice"', 'owner = "alice"\nowners = "bob"', "pyproject.toml: [tool.kjob] unknown keys: owners"),
    "demo timeout": ("[tool.kjob.datasets]", '[tool.kjob.demo]\nrecipe = "tiny"\ntimeout = "soon"\n\n[tool.kjob.datasets]',
                     "pyproject.toml: [tool.kjob.demo] timeout: expected a whole number of seconds of at least 1, not 'soon'"),
    "demo recipe": ("[tool.kjob.datasets]", "[tool.kjob.demo]\nrecipe = 5\n\n[tool.kjob.datasets]",
                    "pyproject.toml: [tool.kjob.demo] recipe: expected a recipe name (string), not 5"),
    "demo parameter": ("[tool.kjob.datasets]", '[tool.kjob.demo]\nrecipe = "tiny"\n[tool.kjob.demo.parameters]\nsteps = [[1]]\n\n[tool.kjob.datasets]',
                       "pyproject.toml: [tool.kjob.demo.parameters] steps: expected a list of booleans"),
    "demo unknown": ("[tool.kjob.datasets]", '[tool.kjob.demo]\nrecipes = "tiny"\n\n[tool.kjob.datasets]',
                     "pyproject.toml: [tool.kjob.demo] unknown keys: recipes"),
}


@pytest.mark.parametrize("case", sorted(WORKSPACE_CASES))
def test_every_workspace_key_is_type_checked(tiny, case):
    old, new, expected = WORKSPACE_CASES[case]
    edit(tiny, "pyproject.toml", old, new)
    one_line_error(tiny.kjob("build", "tiny"), 2, f"error: {expected}")


def test_kjob_toml_errors_name_kjob_toml_and_its_own_tables(tiny):
    tiny.write("kjob.toml", '[datasets]\n"a/b" = 5\n')
    one_line_error(tiny.kjob("build", "tiny"), 2, 'error: kjob.toml: [datasets] "a/b": expected a folder path (string), not 5')
    tiny.write("kjob.toml", 'owner = "x y"\n')
    one_line_error(tiny.kjob("build", "tiny"), 2, "error: kjob.toml: owner: expected a Kaggle user name")


def test_the_owner_from_the_environment_is_checked_too(tiny):
    result = tiny.kjob("build", "tiny", env={"KJOB_OWNER": "bob smith"})
    one_line_error(result, 2, "error: KJOB_OWNER (environment): expected a Kaggle user name", "'bob smith'")
    assert tiny.kjob("build", "tiny", env={"KJOB_OWNER": "bob_smith-2"}).exit_code == 0


def test_each_backend_has_its_parameter_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.kjob]
        owner = "alice"
        [tool.kjob.local.parameters]
        device = "cpu"
        workers = 0
        [tool.kjob.kaggle.parameters]
        device = "cuda"
        sizes = [1, 2.5, "x", true]
    """))
    config = load_config(tmp_path)
    assert config.backend_parameters == {"local": {"device": "cpu", "workers": 0},
                                         "kaggle": {"device": "cuda", "sizes": [1, 2.5, "x", True]}}
    assert config.local_parameters == {"device": "cpu", "workers": 0}
    (tmp_path / "pyproject.toml").write_text('[tool.kjob]\nowner = "alice"\n')
    assert load_config(tmp_path).backend_parameters == {} and load_config(tmp_path).local_parameters == {}


# --- 3. files that are not UTF-8 ----------------------------------------------------------

def test_a_recipe_that_is_not_utf8_names_the_byte(tiny):
    path = tiny.root / "builders/tiny.toml"
    path.write_bytes(path.read_bytes().replace(b"two small modules", b"two sm\xe4ll modules"))
    offset = path.read_bytes().index(b"\xe4")
    one_line_error(tiny.kjob("build", "tiny"), 2,
                   f"error: builders/tiny.toml: not UTF-8 text (byte 0xe4 at offset {offset}, line 3)")


@pytest.mark.parametrize("name", ["pyproject.toml", "kjob.toml"])
def test_a_configuration_file_that_is_not_utf8_names_the_byte(tiny, name):
    path = tiny.root / name
    text = path.read_bytes() if path.exists() else b""
    path.write_bytes(text + b'# caf\xe9\n')
    offset = path.read_bytes().index(b"\xe9")
    one_line_error(tiny.kjob("build", "tiny"), 2, f"error: {name}: not UTF-8 text (byte 0xe9 at offset {offset}")


def test_a_src_module_that_is_not_utf8_is_a_validation_error(tiny):
    assert tiny.kjob("build", "tiny").exit_code == 0
    before = tiny.snapshot("kernels")
    path = tiny.root / "src/pkg/job.py"
    path.write_bytes(path.read_bytes().replace(b'"""The entry point."""', b'"""The entry p\xf6int."""'))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert "error: src/pkg/job.py: not UTF-8 text (byte 0xf6 at offset 14, line 1)" in result.stderr
    assert tiny.snapshot("kernels") == before


# --- 4. credentials in the metadata and in more spellings --------------------------------

METADATA_LEAKS = {
    "title": ('title = "Tiny Kernel"', 'title = "Tiny ghp_' + "A1b2" * 10 + '"', "title: looks like a GitHub token"),
    "description": ('description = "two small modules"', f'description = "KGAT_{HEX32}"', "description: looks like a Kaggle API token"),
    "machine_shape": (TOP, TOP + 'machine_shape = "AKIAABCDEFGHIJKLMNOP"\n', "machine_shape: looks like an AWS access key"),
    "dataset_sources": ('dataset_sources = ["someone/some-data"]', f'dataset_sources = ["someone/KGAT_{HEX32}"]',
                        "dataset_sources: looks like a Kaggle API token"),
}


@pytest.mark.parametrize("key", sorted(METADATA_LEAKS))
def test_credentials_in_recipe_fields_are_refused_by_key(tiny, key):
    old, new, expected = METADATA_LEAKS[key]
    edit(tiny, "builders/tiny.toml", old, new)
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    assert f"error: builders/tiny.toml: {expected}" in result.stderr
    for secret in ("A1b2A1b2", "0f0f0f", "ABCDEFGH"):
        assert secret not in result.output
    assert not (tiny.root / "kernels/tiny").exists()


CODE_LEAKS = {
    "lower-case kaggle_key": f'kaggle_key = "{HEX32}"',
    "bare key": f"key = '{HEX32}'",
    "api_key": f'api_key = "{HEX32}"',
    "token": f'token = "{HEX32}"',
    "auth tuple": f'import requests\nrequests.get("https://example.org", auth=("alice", "{HEX32}"))',
    "list pair": f'CREDENTIALS = ["alice", "{HEX32}"]',
    "kaggle.json dict": f'KAGGLE = {{"username": "u", "key": "{HEX32}"}}',
    "environ": f'import os\nos.environ["KAGGLE_KEY"] = "{HEX32}"',
    "api token": f'import os\nos.environ["KAGGLE_API_TOKEN"] = "KGAT_{HEX32}"',
    "keyword argument": f'import json\nCONFIG = json.dumps(dict(username="u", key="{HEX32}"))',
}


@pytest.mark.parametrize("kind", sorted(CODE_LEAKS))
def test_more_spellings_of_a_credential_are_found_and_never_shown(tiny, kind):
    line = CODE_LEAKS[kind]
    edit(tiny, "src/pkg/job.py", "import time\n", f"import time\n{line}\n")
    lineno = 3 + len(line.splitlines())
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    assert f"src/pkg/job.py:{lineno}: looks like" in result.stderr
    assert "0f0f0f" not in result.output


def test_hashes_are_not_credentials(tiny):
    edit(tiny, "src/pkg/job.py", "import time\n", textwrap.dedent(f"""\
        import time
        SHA256 = "{'ab' * 32}"
        md5 = "{HEX32}"
        checksum = "{HEX32}"
        FILES = [("train-images.gz", "{HEX32}"), ("https://example.org/x.zip", "{HEX32}")]
        DIGESTS = ["{HEX32}", "{HEX32}"]
        tokenizer_name = "bert-base-uncased"
    """))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output


def test_the_project_recipes_build_clean(project):
    result = project.kjob("build", "--all")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no warnings, no problems


# --- 5. concurrent builds ------------------------------------------------------------------

def kjob_command() -> str:
    return str(Path(sys.executable).with_name("kjob"))


def build_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KJOB_")}
    env["KJOB_WORKSPACE"] = str(root)
    return env


def test_concurrent_builds_all_succeed_and_leave_one_complete_folder(tiny):
    env = build_env(tiny.root)
    kernels = tiny.root / "kernels"
    for _ in range(3):  # one round collides often without a lock, three almost always
        procs = [subprocess.Popen([kjob_command(), "build", "tiny", "-p", f"steps={i % 3 + 1}"], cwd=tiny.root,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(12)]
        outcomes = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]
        for proc in procs:
            proc.stderr.close()
        assert [rc for rc, _ in outcomes] == [0] * 12, [err for rc, err in outcomes if rc]
        assert {p.name for p in (kernels / "tiny").iterdir()} == {"tiny.ipynb", "kernel-metadata.json", "build.json"}
        assert not [p.name for p in kernels.iterdir() if ".staging-" in p.name or ".old-" in p.name]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_dead_build_are_swept_and_an_unfinished_swap_is_undone(tiny):
    assert tiny.kjob("build", "tiny").exit_code == 0
    kernels = tiny.root / "kernels"
    pid = dead_pid()
    for name in (f".tiny.staging-{pid}", f".tiny.old-{pid}"):
        (kernels / name).mkdir()
        (kernels / name / "tiny.ipynb").write_text("half\n")
    assert tiny.kjob("build", "tiny").exit_code == 0
    assert not [p.name for p in kernels.iterdir() if ".staging-" in p.name or ".old-" in p.name]

    # A build that died between its two renames left the only copy in .tiny.old-PID: it is
    # put back, even by a build that then fails (its title does not slugify to the slug).
    before = tiny.snapshot("kernels/tiny")
    (kernels / "tiny").rename(kernels / f".tiny.old-{pid}")
    edit(tiny, "builders/tiny.toml", 'title = "Tiny Kernel"', 'title = "Tiny Kernel v2"')
    assert tiny.kjob("build", "tiny", "-p", "steps=9").exit_code == 3
    assert tiny.snapshot("kernels/tiny") == before
    assert not [p.name for p in kernels.iterdir() if ".staging-" in p.name or ".old-" in p.name]


# --- 6. parameters cannot be shadowed; the entry takes exactly the parameters ---------------

SHADOWS = {
    "assignment": ("rate = 0.1", "rate", 4),
    "annotated": ("rate: float = 0.1", "rate", 4),
    "augmented": ("steps += 1", "steps", 4),
    "def": ("def label():\n    return 'x'", "label", 4),
    "class": ("class fail:\n    pass", "fail", 4),
    "import alias": ("import time as sleep", "sleep", 4),
    "from import": ("from time import sleep", "sleep", 4),
    "for target": ("for steps in range(2):\n    pass", "steps", 4),
    "with target": ("with open(__file__) as label:\n    pass", "label", 4),
    "inside try": ("try:\n    import numpy as rate\nexcept ImportError:\n    pass", "rate", 5),
    "walrus": ("(rate := 2)", "rate", 4),
    "tuple target": ("a, (b, steps) = 1, (2, 3)", "steps", 4),
}


@pytest.mark.parametrize("kind", sorted(SHADOWS))
def test_a_module_level_binding_of_a_parameter_is_refused(tiny, kind):
    code, name, lineno = SHADOWS[kind]
    edit(tiny, "src/pkg/job.py", "import time\n", f"import time\n{code}\n")
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    assert (f"error: src/pkg/job.py:{lineno}: module-level '{name}' replaces the recipe parameter {name} "
            "(the notebook runs modules after the parameters cell); rename it") in result.stderr.splitlines()


def test_local_names_and_main_guards_do_not_shadow(tiny):
    edit(tiny, "src/pkg/job.py", "import time\n", textwrap.dedent("""\
        import time
        SQUARES = [steps * steps for steps in range(3)]
        TWICE = (lambda rate: rate * 2)(1)


        def helper(rate, steps=1):
            label = rate * steps
            return label


        class Box:
            fail = False


        if __name__ == "__main__":
            steps = 1
    """))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output


ENTRY_JOB = '''
def main({signature}):
    return 1
'''

SIGNATURES = {
    "a parameter missing": ("steps, rate, label, fail",
                            "src/pkg/job.py:1: main() does not accept the recipe parameter 'sleep' (builders/tiny.toml); "
                            "add it to the signature, or **kwargs"),
    "a required extra": ("steps, rate, label, fail, sleep, extra",
                         "src/pkg/job.py:1: main() requires 'extra', which is not a recipe parameter; "
                         "add it to [parameters] in builders/tiny.toml, or give it a default"),
    "a required keyword-only extra": ("steps, rate, label, fail, sleep, *, extra", "main() requires 'extra'"),
    "a required positional-only extra": ("extra, /, steps, rate, label, fail, sleep", "main() requires 'extra'"),
    "a parameter positional-only": ("steps, /, rate, label, fail, sleep",
                                    "main() takes 'steps' as positional-only, but the main cell passes"),
}


@pytest.mark.parametrize("case", sorted(SIGNATURES))
def test_the_entry_signature_must_match_the_recipe_parameters(tiny, case):
    signature, expected = SIGNATURES[case]
    tiny.write("src/pkg/job.py", ENTRY_JOB.format(signature=signature))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 3, result.output
    assert f"error: {expected}" in result.stderr or any(expected in line for line in result.stderr.splitlines())


@pytest.mark.parametrize("signature", ["steps, **rest", "steps, rate, label, fail, sleep, extra=1, *args",
                                       "*, steps, rate, label, fail, sleep"])
def test_entry_signatures_that_take_the_parameters_build(tiny, signature):
    tiny.write("src/pkg/job.py", ENTRY_JOB.format(signature=signature))
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output


# --- 7. literal /kaggle paths are warnings -------------------------------------------------

def test_a_literal_kaggle_path_is_a_warning_not_an_error(tiny):
    edit(tiny, "src/pkg/job.py", "import time\n",
         'import time\nOUT = "/kaggle/working"\nDATA = f"/kaggle/input/{1}"\nROOT = "/kaggle"\nNOTE = "see /kaggle/working"\n')
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings[0] == (
        "warning: src/pkg/job.py:4: literal path '/kaggle/working': right on Kaggle; local runs map it only "
        'where bubblewrap is available (prefer os.environ.get("KAGGLE_WORKING_DIR", "/kaggle/working"))'
    )
    assert warnings[1].startswith("warning: src/pkg/job.py:5: literal path '/kaggle/input/'")
    assert 'os.environ.get("KAGGLE_INPUT_DIR", "/kaggle/input")' in warnings[1]
    assert warnings[2].startswith("warning: src/pkg/job.py:6: literal path '/kaggle'")
    assert len(warnings) == 3  # the env-var fallback in inputs() and a path inside a sentence are fine
    assert "built kernels/tiny" in result.stdout

    plan = plan_build(find_workspace(), "tiny")
    assert plan.warnings == tuple(w.removeprefix("warning: ") for w in warnings)


def test_a_clean_build_has_no_warnings(tiny):
    result = tiny.kjob("build", "tiny")
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert plan_build(find_workspace(), "tiny").warnings == ()


def test_library_errors_keep_their_cause(tiny):
    path = tiny.root / "builders/tiny.toml"
    path.write_bytes(b"title = \xff\n")
    with pytest.raises(ConfigError) as info:
        plan_build(find_workspace(), "tiny")
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
