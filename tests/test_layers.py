"""The Lambda layers' Makefile run for real (what `sam build` runs): the event targets' layer builds for the Lambda
platform from the package index (manylinux wheels; a dependency published only as source, such as recurrent, built
into a wheel first), and what it holds runs: a time prompt is read and a target's handler imports, with nothing but
the layer on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make (.ci/run installs it)")


def test_the_core_layer_builds_from_the_package_index_and_runs(tmp_path: Path) -> None:
    # when: sam build's step for CoreLayer (`make build-CoreLayer` in a scratch folder, ARTIFACTS_DIR set)
    artifacts = tmp_path / "artifacts"
    build = subprocess.run(["make", "--makefile", str(ROOT / "layers" / "Makefile"), "build-CoreLayer"],
                           cwd=tmp_path, env={**os.environ, "ARTIFACTS_DIR": str(artifacts),
                                              "PYTHON": sys.executable},
                           capture_output=True, text=True, timeout=600, check=False)

    # then
    assert build.returncode == 0, build.stderr[-3000:]
    layer = artifacts / "python"
    assert {"openbrain", "recurrent", "dateparser", "croniter"} <= {p.name for p in layer.iterdir()}
    assert not (layer / "langchain").exists()
    check = ("from datetime import UTC, datetime, timedelta\n"
             "from openbrain.domain.time_prompts import parse_time_prompt\n"
             "import openbrain.targets.message_webhook, openbrain.targets.lead_webhook\n"
             "when = parse_time_prompt('every weekday at 9', now=datetime(2026, 12, 4, tzinfo=UTC),\n"
             "                         timezone='Europe/London', min_interval=timedelta(minutes=15))\n"
             "print(when.expression)\n")
    # -I: only the layer (and the standard library) on the path, as in Lambda
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(layer)!r})\n{check}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "cron(0 9 ? * MON,TUE,WED,THU,FRI *)"
