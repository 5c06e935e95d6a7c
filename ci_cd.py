#!/usr/bin/env python3
"""Every devops step of OpenBrain, cross-platform: test, build and publish the Python package, deploy the
SAM stack, print its outputs. Each command is echoed before it runs; `--dry-run` echoes the whole plan
and runs nothing. Pipfile scripts call this (`pipenv run test|lint|build|publish|deploy|outputs`).

Order of a run: lint -> tests -> build -> publish -> deploy -> outputs. Tests run when asked for (`-t`) and,
unless `--skip-tests`, before anything is published or deployed. `-P` builds first unless `--skip-build`
(the original only published when `--skip-build` was given).

Stages: `dev` publishes to TestPyPI and deploys the stack `openbrain-dev`; `prod` publishes to PyPI and
deploys `openbrain-prod`. Credentials are never arguments here: twine reads TWINE_USERNAME /
TWINE_PASSWORD (or ~/.pypirc; TWINE_REPOSITORY_URL sends the upload elsewhere), sam and aws the usual AWS
profile or environment.

The Python tools come from the `dev` extra (ruff, mypy, import-linter, pytest) and the `devops` extra it
includes (cfn-lint, build, twine): run this with the interpreter of the venv they are in (`.venv/bin/python
ci_cd.py ...`); console scripts are taken from beside that interpreter, so the venv need not be on PATH.
sam and aws come from PATH (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
REPOSITORIES = {"dev": "testpypi", "prod": "pypi"}
log = logging.getLogger("ci_cd")


class CommandFailed(Exception):
    def __init__(self, command: Sequence[str], code: int) -> None:
        super().__init__(f"command failed with exit code {code}: {shlex.join(command)}")
        self.code = code


class Runner:
    """Echoes each step, then runs it (or, in a dry run, only echoes it)."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run

    def echo(self, text: str) -> None:
        print(("[dry-run] " if self.dry_run else "") + text, flush=True)

    def run(self, command: Sequence[str]) -> None:
        self.echo("$ " + shlex.join(command))
        if self.dry_run:
            return
        executable = shutil.which(command[0]) or command[0]  # finds sam.cmd / aws.cmd on Windows
        log.debug("running %s in %s", executable, ROOT)
        try:
            code = subprocess.run([executable, *command[1:]], cwd=ROOT, check=False).returncode  # noqa: S603 - our own argv
        except FileNotFoundError:
            raise CommandFailed(command, 127) from None
        if code != 0:
            raise CommandFailed(command, code)

    def remove_tree(self, path: Path) -> None:
        self.echo(f"$ rm -rf {path.relative_to(ROOT).as_posix()}")
        if not self.dry_run:
            shutil.rmtree(path, ignore_errors=True)


def tool(name: str) -> str:
    """The console script `name` beside this interpreter (the venv's bin/), else `name` for PATH to find."""
    folder = Path(sys.executable).parent
    script = next((folder / f"{name}{suffix}" for suffix in ("", ".exe") if (folder / f"{name}{suffix}").is_file()),
                  None)
    return str(script) if script else name


def stack_name(args: argparse.Namespace) -> str:
    return args.stack_name or f"openbrain-{args.stage}"


def lint(runner: Runner) -> None:
    # scripts/test runs this before the tests (cfn-lint has no `python -m` entry point)
    runner.run([sys.executable, "-m", "ruff", "check", "openbrain", "lambdas", "tests", "bench", "scripts", "ci_cd.py"])
    runner.run([sys.executable, "-m", "mypy", "openbrain"])
    runner.run([tool("lint-imports"), "--no-cache"])
    runner.run([tool("cfn-lint"), "template.yaml"])


def run_tests(runner: Runner, args: argparse.Namespace) -> None:
    runner.run([sys.executable, "-m", "pytest", "-q"] + (["-v"] if args.verbose else []))


def build_python(runner: Runner) -> None:
    # Idempotent: a clean dist/ each time, so publish uploads exactly this build.
    runner.remove_tree(DIST)
    runner.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", "dist", "."])


def publish_python(runner: Runner, args: argparse.Namespace) -> None:
    if runner.dry_run or not DIST.is_dir():
        files = ["dist/*"]
    else:
        files = sorted(p.relative_to(ROOT).as_posix() for p in DIST.iterdir() if p.suffix in {".whl", ".gz"})
    if not files:
        raise SystemExit("error: dist/ holds nothing to publish; build first (drop --skip-build)")
    runner.run([sys.executable, "-m", "twine", "check", *files])
    runner.run([sys.executable, "-m", "twine", "upload", "--non-interactive",
                "--repository", REPOSITORIES[args.stage], *files])


def deploy_infra(runner: Runner, args: argparse.Namespace) -> None:
    runner.run(["sam", "validate", "--lint"])
    runner.run(["sam", "build"])
    runner.run([
        "sam", "deploy",
        "--stack-name", stack_name(args),
        "--parameter-overrides", f"Stage={args.stage}",
        "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND",
        "--resolve-s3",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
    ])


def print_outputs(runner: Runner, args: argparse.Namespace) -> None:
    runner.run([
        "aws", "cloudformation", "describe-stacks",
        "--stack-name", stack_name(args),
        "--query", "Stacks[0].Outputs",
        "--output", "table",
    ])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ci_cd.py",
        description="Utility script for deployment of python packages and supporting infrastructure.",
    )
    p.add_argument("--dry-run", "-d", action="store_true", help="Prevents any changes from being made.")
    p.add_argument("--verbose", "-v", action="store_true", help="Logs debug messages.")
    p.add_argument("--print-central-infra-outputs", "-p", action="store_true",
                   help="Prints the central infrastructure outputs as they currently exist.")
    p.add_argument("--stage", "-s", choices=sorted(REPOSITORIES), default="dev",
                   help="If 'dev', publish to pypi-test, if 'prod', publish to pypi (and deploy openbrain-<stage>).")
    p.add_argument("--lint", "-L", action="store_true", help="Run ruff, mypy, lint-imports and cfn-lint")
    p.add_argument("--test-python", "-t", action="store_true", help="Run pytest tests")
    p.add_argument("--skip-tests", action="store_true", help="Skip pytest tests")
    p.add_argument("--skip-build", action="store_true", help="Skip python build commands")
    p.add_argument("--build-python", "-B", action="store_true",
                   help="Run python build commands in an idempotent manner.")
    p.add_argument("--publish-python", "-P", action="store_true",
                   help="Publish python with twine (builds first unless --skip-build)")
    p.add_argument("--deploy-infra", "-I", action="store_true", help="Deploy the central infrastructure stack")
    p.add_argument("--stack-name", help="CloudFormation stack name (default: openbrain-<stage>)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    log.debug("arguments: %s", vars(args))
    if not (args.lint or args.test_python or args.build_python or args.publish_python or args.deploy_infra
            or args.print_central_infra_outputs):
        p.print_help()
        return 0

    runner = Runner(args.dry_run)
    tests = (args.test_python or args.publish_python or args.deploy_infra) and not args.skip_tests
    build = (args.build_python or args.publish_python) and not args.skip_build
    try:
        if args.lint:
            lint(runner)
        if tests:
            run_tests(runner, args)
        if build:
            build_python(runner)
        if args.publish_python:
            publish_python(runner, args)
        if args.deploy_infra:
            deploy_infra(runner, args)
        if args.print_central_infra_outputs:
            print_outputs(runner, args)
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
