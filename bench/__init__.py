"""OpenBrain's benchmarks against the peers a user would pick instead: `python -m bench` (docs/benchmarks.md).

- `inprocess`: per-turn overhead, session growth and the 400 KB item limit, on one in-process moto;
- `coldstart`: the chat Lambda handler's cold start, and the size of what `sam build` packages;
- `serve_load`: `ob-serve` throughput under concurrent clients.

The contenders (`contenders`) share one zero-latency scripted chat model and one fixed script (`script`);
`meter` counts AWS calls and moto's time, `itemsize` sizes items by DynamoDB's documented rules.
"""
