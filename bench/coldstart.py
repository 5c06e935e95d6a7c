"""Result 3: cold start of the chat Lambda handler, and the size of what `sam build` packages.

Each run is a fresh `python` process that imports `lambdas/chat_api/app.py` (which re-exports
`openbrain.api.app.handler`), then serves one `POST /chat` (a new session and its first answer, API
Gateway REST proxy event, embedded backend, the `local` demo client whose `default` profile uses the
offline model). Between the two, untimed, it starts the embedded backend (moto: on Lambda this is
DynamoDB across the network) and creates the demo client. The floor is a process that only imports
`langchain.agents` and `langchain_openai`, what a handler that builds its agent at import pays first.

"with bytecode": the venv's compiled `.pyc` files, as a layer built by layers/Makefile ships them.
"without": `PYTHONDONTWRITEBYTECODE=1` and an empty `PYTHONPYCACHEPREFIX`, so every module is compiled
from source on import and nothing is written, as with an artifact that ships no bytecode.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench import report

ROOT = Path(__file__).resolve().parent.parent
HANDLER_DIR = ROOT / "lambdas" / "chat_api"

HANDLER_CHILD = """
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from app import handler
imported = time.perf_counter()
langchain_at_import = "langchain.agents" in sys.modules
from openbrain.aws.backend import get_backend
from openbrain.local.serve import api_gateway_event, ensure_demo_client
from openbrain.targets.poller import LocalContext
demo = ensure_demo_client(get_backend().stores, [], offline=True)
headers = [("Content-Type", "application/json"), ("x-api-key", demo.api_key)]
event = api_gateway_event("POST", "/chat", headers, json.dumps({"message": "what is 6 * 7"}).encode(), "127.0.0.1")
context = LocalContext(function_name="chat-api", timeout_ms=29_000)
served_from = time.perf_counter()
response = handler(event, context)
served = time.perf_counter()
openai_loaded = "langchain_openai" in sys.modules
import langchain_openai
openai_import = time.perf_counter() - served
print(json.dumps({"import": imported - started, "first_chat": served - served_from,
                  "status": response["statusCode"], "langchain_at_import": langchain_at_import,
                  "openai_import": 0.0 if openai_loaded else openai_import}))
"""

FLOOR_CHILD = """
import json, time
started = time.perf_counter()
import langchain.agents, langchain_openai
print(json.dumps({"import": time.perf_counter() - started}))
"""


def _child(code: str, bytecode: bool, home: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OB_", "OPENAI_", "AWS_", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"))}
    env.update(HOME=home, OB_BACKEND="memory", OB_MEMORY_STORE="none", POWERTOOLS_LOG_LEVEL="WARNING")
    with tempfile.TemporaryDirectory(prefix="ob-bench-pycache-") as empty:
        if not bytecode:
            env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=empty)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, str(HANDLER_DIR)], env=env, capture_output=True,  # noqa: S603
                              text=True, timeout=300, check=False, cwd=home)
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = elapsed
    return dict(result)


def measure(runs: int) -> str:
    """`runs` fresh processes of each kind, interleaved; a Markdown table of medians."""
    results: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="ob-bench-home-") as home:
        _child(HANDLER_CHILD, True, home)  # writes the .pyc files the "with bytecode" runs then use
        _child(FLOOR_CHILD, True, home)
        for _ in range(runs):
            for kind, code in (("handler", HANDLER_CHILD), ("floor", FLOOR_CHILD)):
                for bytecode in (True, False):
                    results.setdefault((kind, bytecode), []).append(_child(code, bytecode, home))
    rows = []
    floors = {b: report.median([r["import"] for r in results[("floor", b)]]) for b in (True, False)}
    for bytecode in (True, False):
        handler = results[("handler", bytecode)]
        statuses = {r["status"] for r in handler}
        imported = report.median([r["import"] for r in handler])
        first = report.median([r["first_chat"] for r in handler])
        label = "with bytecode" if bytecode else "without bytecode"
        openai = report.median([r["openai_import"] for r in handler])
        rows.append([f"chat handler, {label}", report.ms(imported, 0), report.ms(first, 0), report.ms(openai, 0),
                     report.ms(imported + first, 0), report.ms(report.median([r["process"] for r in handler]), 0),
                     f"{imported / floors[bytecode]:.2f}× the floor's import",
                     (f"HTTP {', '.join(map(str, sorted(statuses)))}; langchain.agents at import: "
                     f"{'yes' if any(r['langchain_at_import'] for r in handler) else 'no'}")])
    for bytecode in (True, False):
        floor = results[("floor", bytecode)]
        label = "with bytecode" if bytecode else "without bytecode"
        rows.append([f"floor: import langchain.agents, langchain_openai, {label}", report.ms(floors[bytecode], 0),
                     "–", "–", report.ms(floors[bytecode], 0),
                     report.ms(report.median([r["process"] for r in floor]), 0), "1.00×", ""])
    return report.table(
        f"Cold start: a fresh process, median of {runs} (ms)",
        ["what", "import", "first POST /chat", "+ langchain_openai", "import + first chat", "whole process",
         "import vs floor", "check"],
        rows,
        [("The offline model's first turn imports langchain.agents but not langchain_openai/openai; "
          "'+ langchain_openai' is what importing it then adds (the first turn of an openai: profile pays it). "
          "'whole process' adds the interpreter's start and, for the handler, the untimed embedded-backend "
          "start and demo client.")])


def find_sam() -> str | None:
    """`sam` on PATH, or in the usual separate virtualenvs (it conflicts with gradio, so not in ours)."""
    for candidate in (shutil.which("sam"), "/tmp/samvenv/bin/sam", str(Path.home() / ".samvenv" / "bin" / "sam")):  # noqa: S108 - a conventional venv path
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _tree(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _zipped(path: Path) -> int:
    with tempfile.TemporaryFile() as out:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                archive.write(file, file.relative_to(path))
        return out.tell()


def _template_layers() -> dict[str, list[str]]:
    """Function logical id -> the logical ids of its layers, from template.yaml."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)  # type: ignore[arg-type]

    Loader.add_multi_constructor("!", tag)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    functions = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            layers = resource.get("Properties", {}).get("Layers", [])
            functions[name] = [str(layer) for layer in layers]
    return functions


def sam_sizes(timeout: float = 600) -> str:
    """`sam build` into a temporary directory; each function's artifact, its layers, and the total."""
    sam = find_sam()
    if sam is None:
        return report.table("Package size (sam build)", ["result"],
                            [[("not available: aws-sam-cli not found (PATH, /tmp/samvenv, ~/.samvenv); "
                              "install it in its own venv, see docs/deploy.md")]])
    with tempfile.TemporaryDirectory(prefix="ob-bench-sam-") as scratch:
        build = Path(scratch) / "build"
        env = {**os.environ, "PATH": f"{Path(sam).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "SAM_CLI_TELEMETRY": "0"}
        started = time.perf_counter()
        done = subprocess.run([sam, "build", "--template-file", str(ROOT / "template.yaml"),  # noqa: S603
                               "--build-dir", str(build), "--base-dir", str(ROOT)],
                              cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        took = time.perf_counter() - started
        if done.returncode != 0:
            return report.table("Package size (sam build)", ["result"],
                                [[f"sam build failed ({done.returncode}): {done.stderr.strip()[-300:]}"]])
        sizes = {d.name: (*_tree(d), _zipped(d)) for d in sorted(build.iterdir()) if d.is_dir()}
    rows = []
    for function, layers in _template_layers().items():
        parts = [function, *layers]
        unzipped = sum(sizes[p][0] for p in parts if p in sizes)
        zipped = sum(sizes[p][2] for p in parts if p in sizes)
        detail = ", ".join(f"{p} {report.size(sizes[p][0])} ({sizes[p][1]:,} files)" for p in parts if p in sizes)
        rows.append([function, report.size(unzipped), report.size(zipped), detail])
    return report.table(
        f"Package size: what `sam build` produced ({Path(sam).name} in {Path(sam).parent.parent}, {took:.0f} s)",
        ["function", "unzipped, with its layers", "zipped (deflate)", "parts"], rows,
        [("Lambda's limit: 250 MB unzipped for a function and all its layers (`sam deploy` uploads the zips "
          "through S3, so the 50 MB direct-upload limit does not apply).")])
