"""ci_cd.py: the original's flags, the plan each combination prints, that a dry run runs nothing, and lint, build
and publish for real (the upload to a package index on loopback)."""

from __future__ import annotations

import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDGET_FILES = {"openbrain/web/widget.js", "openbrain/web/demo.html", "openbrain/web/demo.css"}


def fake_tools(bin_dir: Path, log: Path) -> dict[str, str]:
    """`sam` and `aws` stand-ins on PATH that record each call; the environment to run with them."""
    bin_dir.mkdir()
    for tool in ("sam", "aws"):
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def ci_cd(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(cwd / "ci_cd.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def plan(*args: str) -> list[str]:
    """The commands a dry run prints, one per line, without the `[dry-run] $ ` marker."""
    result = ci_cd("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith("[dry-run] $ ") for line in lines), lines
    return [line.removeprefix("[dry-run] $ ") for line in lines]


def has(lines: list[str], fragment: str) -> bool:
    return any(fragment in line for line in lines)


def test_publish_builds_then_uploads_to_testpypi_on_dev() -> None:
    lines = plan("-P")
    build = next(i for i, line in enumerate(lines) if "-m build" in line)
    upload = next(i for i, line in enumerate(lines) if "twine upload" in line)
    assert build < upload
    assert "--repository testpypi" in lines[upload]
    assert has(lines, "-m pytest"), "tests gate a publish"


def test_publish_to_pypi_on_prod() -> None:
    assert has(plan("-P", "-s", "prod"), "twine upload --non-interactive --repository pypi")


def test_publish_with_skip_build_only_uploads() -> None:
    lines = plan("-P", "--skip-build", "--skip-tests")
    assert not has(lines, "-m build") and not has(lines, "rm -rf dist")
    assert has(lines, "twine upload")


def test_build_alone_is_a_clean_build_without_tests_or_upload() -> None:
    assert plan("-B") == [
        "rm -rf dist",
        f"{sys.executable} -m build --sdist --wheel --outdir dist .",
    ]


def test_deploy_prod_builds_and_deploys_the_prod_stack() -> None:
    lines = plan("-I", "-s", "prod", "--skip-tests")
    assert lines[:2] == ["sam validate --lint", "sam build"]
    [deploy] = [line for line in lines if line.startswith("sam deploy")]
    assert "--stack-name openbrain-prod" in deploy
    assert "--parameter-overrides Stage=prod" in deploy


def test_deploy_dev_is_the_default_stage() -> None:
    assert has(plan("-I"), "sam deploy --stack-name openbrain-dev --parameter-overrides Stage=dev")


def test_test_flag_runs_pytest_and_skip_tests_wins() -> None:
    assert plan("-t") == [f"{sys.executable} -m pytest -q"]
    assert plan("-t", "--skip-tests") == []


def test_outputs_describe_the_stages_stack() -> None:
    assert plan("-p", "-s", "prod") == [
        "aws cloudformation describe-stacks --stack-name openbrain-prod --query 'Stacks[0].Outputs' --output table"
    ]


def test_steps_run_in_order_tests_build_publish_deploy_outputs() -> None:
    lines = plan("-t", "-B", "-P", "-I", "-p")
    order = [next(i for i, line in enumerate(lines) if fragment in line)
             for fragment in ("-m pytest", "-m build", "twine upload", "sam deploy", "describe-stacks")]
    assert order == sorted(order)
    assert sum("-m build" in line for line in lines) == 1, "building once is enough"


@pytest.mark.parametrize("args", [["--bogus"], ["-s", "staging"], ["-x"]])
def test_unknown_flags_and_stages_are_usage_errors(args: list[str]) -> None:
    result = ci_cd("-d", *args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_help_lists_the_original_flags() -> None:
    result = ci_cd("--help")
    assert result.returncode == 0
    for flag in ("--dry-run", "-d", "--verbose", "-v", "--print-central-infra-outputs", "-p", "--stage", "-s",
                 "--test-python", "-t", "--skip-tests", "--skip-build", "--build-python", "-B",
                 "--publish-python", "-P", "--deploy-infra", "-I"):
        assert flag in result.stdout


@pytest.mark.skipif(os.name == "nt", reason="the fake tools are POSIX shell scripts")
def test_dry_run_runs_nothing_and_changes_nothing(tmp_path: Path) -> None:
    # given ci_cd.py alone in a folder, with sam and aws that record any call
    shutil.copy(ROOT / "ci_cd.py", tmp_path / "ci_cd.py")
    calls = tmp_path / "calls.log"
    env = fake_tools(tmp_path / "bin", calls)
    before = sorted(p.name for p in tmp_path.iterdir())
    # when every step is planned in a dry run
    result = ci_cd("-d", "-t", "-B", "-P", "-I", "-p", "-v", cwd=tmp_path, env=env)
    # then it printed the plan, called no tool, and wrote nothing
    assert result.returncode == 0, result.stderr
    assert "sam deploy" in result.stdout and "twine upload" in result.stdout
    assert not calls.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.skipif(os.name == "nt", reason="the fake tools are POSIX shell scripts")
def test_without_dry_run_each_echoed_command_runs(tmp_path: Path) -> None:
    # given sam and aws that record their calls
    shutil.copy(ROOT / "ci_cd.py", tmp_path / "ci_cd.py")
    calls = tmp_path / "calls.log"
    env = fake_tools(tmp_path / "bin", calls)
    # when deploying (tests skipped) and printing the outputs
    result = ci_cd("-I", "-p", "--skip-tests", "-s", "prod", cwd=tmp_path, env=env)
    # then the echoed commands are exactly the ones that ran
    assert result.returncode == 0, result.stderr
    echoed = [line.removeprefix("$ ") for line in result.stdout.splitlines() if line.startswith("$ ")]
    ran = [line.replace("Stacks[0].Outputs", "'Stacks[0].Outputs'") for line in calls.read_text().splitlines()]
    assert ran == echoed


@pytest.mark.skipif(os.name == "nt", reason="the fake tools are POSIX shell scripts")
def test_a_failing_command_stops_the_run_with_its_exit_code(tmp_path: Path) -> None:
    shutil.copy(ROOT / "ci_cd.py", tmp_path / "ci_cd.py")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sam").write_text("#!/bin/sh\nexit 3\n")
    (bin_dir / "sam").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = ci_cd("-I", "--skip-tests", cwd=tmp_path, env=env)
    assert result.returncode == 3
    assert "sam validate --lint" in result.stderr
    assert "sam build" not in result.stdout


def test_lint_runs_ruff_mypy_and_cfn_lint_before_tests() -> None:
    lines = plan("-L", "-t")
    assert [Path(shlex.split(line)[0]).name if " -m " not in line else line.split(" -m ")[1].split()[0]
            for line in lines] == ["ruff", "mypy", "lint-imports", "cfn-lint", "pytest"]
    assert lines[3].endswith("cfn-lint template.yaml")


def test_nothing_in_the_repository_installs_the_unrelated_openbrain_distribution() -> None:
    # `openbrain` on PyPI is another project: every install names `openbrain-agents` or the checkout (`.[cli]`)
    wrong = re.compile(r"openbrain\[|pip install ['\"]?openbrain(?![\w-])")
    offenders = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.endswith(".egg-info")
                   and d not in {"dist", "build", "__pycache__", "node_modules"}]
        for name in files:
            path = Path(folder, name)
            if path.suffix in {".png", ".jpg", ".gz", ".whl", ".zip", ".pyc"}:
                continue
            text = path.read_text(errors="replace")
            offenders += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                          for m in wrong.finditer(text)]
    assert offenders == []



@pytest.fixture
def package_index() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A package index's upload endpoint on loopback: its URL, and the (file, distribution) pairs posted to it."""
    uploads: list[tuple[str, str]] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            filename = re.search(rb'name="content"; filename="([^"]+)"', body)
            name = re.search(rb'name="name"\r\n\r\n([^\r]+)\r\n', body)
            assert filename and name, body[:2000]
            uploads.append((filename.group(1).decode(), name.group(1).decode()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/legacy/", uploads
    finally:
        server.shutdown()
        server.server_close()


def test_publish_for_real_builds_checks_and_uploads_exactly_that_build(
    tmp_path: Path, package_index: tuple[str, list[tuple[str, str]]]
) -> None:
    # given what a build reads, copied out of the repository (dist/ and build/ stay out of the checkout)
    for name in ("ci_cd.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "openbrain", tmp_path / "openbrain", ignore=shutil.ignore_patterns("__pycache__"))
    url, uploads = package_index
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    env.update(HOME=str(tmp_path), TWINE_REPOSITORY_URL=url, TWINE_USERNAME="__token__",
               TWINE_PASSWORD="pypi-not-a-real-token")  # HOME: no ~/.pypirc of the machine's

    # when publishing (the build first), the tests skipped
    result = ci_cd("-P", "--skip-tests", cwd=tmp_path, env=env)

    # then a wheel and an sdist were built, twine check passed on both, and exactly those were uploaded
    assert result.returncode == 0, result.stdout + result.stderr
    built = sorted(p.name for p in (tmp_path / "dist").iterdir())
    assert sorted(Path(f).suffix for f in built) == [".gz", ".whl"], built
    assert all(f.startswith("openbrain_agents-") for f in built), built
    assert result.stdout.count("PASSED") == 2, result.stdout
    assert sorted(uploads) == [(f, "openbrain-agents") for f in built]
    # the wheel carries the type marker and the license, and says what it is
    [wheel] = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_file] = [n for n in names if n.endswith(".dist-info/METADATA")]
        wheel_metadata = archive.read(metadata_file).decode()
    assert "openbrain/py.typed" in names
    assert set(names) >= WIDGET_FILES, "the chat widget and the demo site ship in the wheel (package data)"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "Name: openbrain-agents\n" in wheel_metadata
    assert "License-Expression: AGPL-3.0-or-later\n" in wheel_metadata
    assert "Classifier: Typing :: Typed\n" in wheel_metadata
    [sdist] = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {Path(m).relative_to(Path(m).parts[0]).as_posix() for m in archive.getnames() if "/" in m}
    assert {"LICENSE", "openbrain/py.typed", "pyproject.toml", *WIDGET_FILES} <= members

