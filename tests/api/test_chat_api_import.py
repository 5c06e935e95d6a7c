"""Importing the handler is cheap and side-effect free: no agent runtime, no AWS client, no backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import openbrain.api.app as app
from openbrain.aws import backend
print(json.dumps({
    "langchain": sorted(m for m in sys.modules
                        if m.split(".")[0] in {"langchain", "langchain_core", "langchain_openai", "openai"}),
    "moto": "moto" in sys.modules,
    "boto3": "boto3" in sys.modules,
    "backend_started": backend._current is not None,
    "handler": callable(app.handler),
}))
"""


def test_importing_the_handler_loads_no_agent_runtime_and_starts_no_backend() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OB_", "AWS_", "OPENAI_"))}
    env["AWS_LAMBDA_FUNCTION_NAME"] = "openbrain-chat-api"  # as in Lambda: a backend would be aws

    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True, timeout=60)

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["langchain"] == []
    assert report["moto"] is False
    assert report["boto3"] is False  # so no AWS client exists yet
    assert report["backend_started"] is False
    assert report["handler"] is True
