"""`ob-serve`: the chat API and the event targets on one machine, over real HTTP.

Backed by the embedded backend, or with `OB_BACKEND=aws` + `AWS_ENDPOINT_URL` by any compatible endpoint
that `ob-admin init` prepared (so `ob-serve`, `ob-admin` and `ob` can share one local store).
"""

from __future__ import annotations

import argparse
import sys

from openbrain.cli.common import add_version, number_between, run, wait_for_stop
from openbrain.core.errors import InvalidInputError
from openbrain.domain.urls import validate_origin

MAX_VISIBILITY_TIMEOUT = 43_200  # SQS's longest: 12 hours


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ob-serve", description=__doc__.splitlines()[0] if __doc__ else None)
    add_version(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on [127.0.0.1]")
    p.add_argument("--port", type=number_between(int, 0, 65535), default=8080,
                   help="port [8080]; 0 picks a free one")
    p.add_argument("--workers", type=number_between(int, 1), default=1, metavar="N",
                   help="processes serving requests [1]; more than 1 needs the store file or OB_BACKEND=aws")
    p.add_argument("--api-key", help="API key of the `local` demo client (ob.local.<secret>); default: a new one")
    p.add_argument("--origin", action="append", default=[], type=_origin, metavar="URL",
                   help="extra allowed browser origin http(s)://host[:port] for the demo client; repeat for several")
    p.add_argument("--retry-after", type=number_between(int, 0, MAX_VISIBILITY_TIMEOUT), default=None,
                   metavar="SECONDS",
                   help="how long a failed target message waits before it is retried, 0-43200 [the queue's, 60]")
    p.add_argument("--poll-interval", type=number_between(float, 0.01, 60.0), default=0.5, metavar="SECONDS",
                   help="how often an idle target queue is polled, 0.01-60 [0.5]")
    return p


def _origin(text: str) -> str:
    """An --origin as `ob-admin client create` takes it (validate_origin), else a usage error."""
    try:
        return validate_origin(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def serve() -> int:
        from openbrain.aws.backend import get_backend
        from openbrain.local.serve import LocalStack, ensure_demo_client

        backend = get_backend()
        stack = LocalStack(backend, args.host, args.port, workers=args.workers, poll_interval=args.poll_interval,
                           retry_after=args.retry_after)
        origins = [stack.url, stack.url.replace("127.0.0.1", "localhost"), *args.origin]
        settings = backend.settings
        has_model_key = settings.openai_api_key or settings.openai_api_key_ref or settings.openai_base_url
        demo = ensure_demo_client(backend.stores, origins, args.api_key, offline=not has_model_key)
        stack.demo.widget_key = demo.widget_key
        stack.start()
        print(f"OpenBrain is serving on {stack.url} (backend: {backend.kind})", flush=True)
        print(f"client: {demo.client_id}   api key: {demo.api_key}   widget key: {demo.widget_key}", flush=True)
        print(f"try:    curl -s -X POST {stack.url}/chat -H 'x-api-key: {demo.api_key}' "
              "-H 'content-type: application/json' -d '{\"message\": \"What time is it in Tokyo?\"}'",
              flush=True)
        print(f"demo:   {stack.url}/demo (a sample site with the chat widget; docs/widget.md)", flush=True)
        wait_for_stop()
        stack.stop()
        backend.close()
        print("stopped", file=sys.stderr)
        return 0

    return run("ob-serve", serve)


if __name__ == "__main__":
    sys.exit(main())
