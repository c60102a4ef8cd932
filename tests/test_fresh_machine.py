"""CI runs what a new user runs: the README's test command, verbatim, in a virtual environment made afresh."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci" / "run"


def readme_commands() -> list[str]:
    """The command lines of the README's first shell block (install and run; install and test)."""
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README starts with a bash block of commands"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim_in_a_fresh_venv():
    [test_command] = [c for c in readme_commands() if "pytest" in c]
    lines = [line.strip() for line in CI.read_text().splitlines()]
    venv = lines.index("python3 -m venv --clear .ci/venv")  # fresh each run, with the interpreter's own pip
    activate = lines.index("source .ci/venv/bin/activate")
    ran = [i for i, line in enumerate(lines) if line == test_command or line.startswith(test_command + " ||")]
    assert ran, f".ci/run does not run the README's test command {test_command!r} as written"
    assert venv < activate < ran[0]
    assert any(re.search(r"\bstatus\b.*-eq 5", line) for line in lines)  # pytest's "no tests collected" is handled


def test_the_ci_venv_is_ignored_by_git_and_by_pytest(tmp_path):
    ignored = subprocess.run(["git", "check-ignore", "-q", ".ci/venv/lib/x.py"], cwd=ROOT)
    assert ignored.returncode == 0, ".ci/venv is not git-ignored"
    # The project's pytest settings over a tree with a test inside .ci/venv: only the other one is collected.
    for name in (".ci/venv/lib/test_inside_venv.py", "tests/test_outside.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("def test_it():\n    pass\n")
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path)],
                               cwd=tmp_path, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "test_outside.py::test_it" in collected.stdout and "test_inside_venv" not in collected.stdout


def test_ci_installs_the_oidc_test_provider_as_locked_before_the_tests():
    """The browser tests' OpenID Connect provider (tests/oidc) is installed by `npm ci` from the committed lockfile."""
    lines = [line.strip() for line in CI.read_text().splitlines()]
    npm = lines.index("npm ci --prefix tests/oidc --no-audit --no-fund")
    [test_command] = [c for c in readme_commands() if "pytest" in c]
    assert npm < next(i for i, line in enumerate(lines) if line.startswith(test_command))
    assert any("missing+=(nodejs npm)" in line for line in lines)  # Debian's Node.js where none is installed
    assert (ROOT / "tests" / "oidc" / "package-lock.json").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "tests/oidc/node_modules/oidc-provider/package.json"], cwd=ROOT)
    assert ignored.returncode == 0, "tests/oidc/node_modules is not git-ignored"
