"""The target Lambda ships without langchain: importing its handler must not load it (cold start, size)."""

from __future__ import annotations

import json
import subprocess
import sys

from support.targets import APP_PATH, ROOT

PROBE = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {str(APP_PATH)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import openbrain.targets.dlq, openbrain.aws.secrets, openbrain.targets.lead_webhook, openbrain.targets.poller
import openbrain.targets.outbox_sweep, openbrain.targets.message_webhook
assert callable(module.handler)
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in
                        ("langchain", "langchain_core", "langchain_openai", "openai", "moto", "openbrain"))))
"""


def test_importing_the_target_handler_loads_no_langchain() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=False)

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"openbrain.targets.lead_webhook", "openbrain.targets.outbox_sweep",
            "openbrain.targets.message_webhook"} <= set(loaded)
    assert not [name for name in loaded if name.startswith(("langchain", "openai"))]
    assert "moto" not in loaded
    for heavy in ("openbrain.conversation.chat", "openbrain.conversation.agents.runner",
                  "openbrain.conversation.memory", "openbrain.conversation.tools"):
        assert heavy not in loaded
