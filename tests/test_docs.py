"""The documentation cannot drift: docs/commands.md is what scripts/command_docs.py writes from
the commands' `--help`, every command and option is in it, every relative link leads to a file,
and README stays short enough to read in one sitting."""

import importlib.util
import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _generator():
    spec = importlib.util.spec_from_file_location("command_docs", ROOT / "scripts" / "command_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sections(text: str) -> dict[str, str]:
    """`kjob runs diff` -> the text of its section in docs/commands.md."""
    parts = re.split(r"^## (kjob[^\n]*)\n", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_commands_md_is_up_to_date():
    generator = _generator()
    assert generator.TARGET.read_text(encoding="utf-8") == generator.render(), (
        "docs/commands.md is stale: run python scripts/command_docs.py")


def test_every_command_and_option_is_documented():
    from kjob.cli import cli

    sections = _sections((DOCS / "commands.md").read_text(encoding="utf-8"))
    missing = []
    for path, command in _generator().walk(cli):
        title = " ".join(("kjob",) + path)
        if title not in sections:
            missing.append(title)
            continue
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            for opt in param.opts + param.secondary_opts:
                if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", sections[title]):
                    missing.append(f"{title} {opt}")
    assert not missing, f"not in docs/commands.md: {missing}"


def _markdown_files():
    return [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        if not (page.parent / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert not broken, f"{page.name}: links to missing files: {broken}"


def test_every_docs_page_is_listed_in_the_index():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    unlisted = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and f"({p.name})" not in index]
    assert not unlisted, f"docs/index.md does not list {unlisted}"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 260, f"README.md has {len(lines)} lines; the reference belongs in docs/"


def test_readme_keeps_the_commands_ci_runs():
    text = README.read_text(encoding="utf-8")
    assert "```bash\nbash scripts/setup.sh && .venv/bin/kjob demo\n```" in text
    assert "```bash\n.venv/bin/python -m pytest -q\n```" in text


def test_the_generator_never_imports_torch():
    import subprocess
    import sys

    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('g', {str(ROOT / 'scripts' / 'command_docs.py')!r}); "
            "g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g); g.render(); "
            "print(sorted(m for m in ('torch', 'numpy', 'nbclient', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
