"""`ob-tuner`: the gradio workbench for agent profiles, sessions, leads and events (see docs/tuner.md).

Needs the `tuner` extra (`pip install 'openbrain-agents[tuner]'`). The access rule is in `openbrain.tuner.access`:
open on loopback (to requests addressed to loopback), a login anywhere else.
"""

from __future__ import annotations

import argparse
import os
import sys

from openbrain.cli.common import add_version, number_between, parse_client_id, run, wait_for_stop
from openbrain.core.errors import ConfigurationError
from openbrain.tuner.access import access, is_loopback

PROG = "ob-tuner"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0] if __doc__ else None)
    add_version(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on [127.0.0.1]; anything else requires OB_TUNER_PASSWORD")
    p.add_argument("--port", type=number_between(int, 0, 65535), default=7860,
                   help="port [7860]; 0 takes the first free one from 7860")
    p.add_argument("--client-id", type=parse_client_id, help="client to open first [public, the client `ob` uses]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def serve() -> int:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        from openbrain.aws.backend import get_backend
        from openbrain.core.settings import load_settings

        settings = load_settings()
        secret = settings.tuner_password.get_secret_value() if settings.tuner_password else None
        login = access(args.host, settings.tuner_user, secret)
        try:
            from openbrain.tuner.ui import build
        except ImportError as exc:
            raise ConfigurationError(
                f"ob-tuner needs the tuner extra ({exc.name} is missing): pip install 'openbrain-agents[tuner]'"
            ) from exc
        from starlette.middleware import Middleware

        from openbrain.tuner.access import HostGuard
        from openbrain.tuner.workbench import Workbench

        backend = get_backend(settings)
        page = build(Workbench(backend), client_id=args.client_id)
        page.queue(default_concurrency_limit=4)
        # On loopback, only requests addressed to loopback (DNS rebinding); never a share link, MCP server
        # or monitoring page, whatever GRADIO_* variables say.
        middleware = [Middleware(HostGuard)] if is_loopback(args.host) else []
        try:
            _, local_url, _ = page.launch(
                server_name=args.host, server_port=args.port or None, auth=login, prevent_thread_lock=True,
                quiet=True, ssr_mode=False, show_error=False, footer_links=[], share=False, mcp_server=False,
                enable_monitoring=False, app_kwargs={"middleware": middleware},
                auth_message="OpenBrain tuner: log in with OB_TUNER_USER and OB_TUNER_PASSWORD" if login else None,
            )
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
        url = f"http://{args.host}:{page.server_port}/" if ":" not in args.host else local_url
        print(f"ob-tuner is serving on {url} (backend: {backend.kind})", flush=True)
        if login:
            print(f"access: log in as {login[0]!r} with OB_TUNER_PASSWORD", flush=True)
        else:
            print("access: loopback only, no password (set OB_TUNER_PASSWORD to require one)", flush=True)
        wait_for_stop()
        page.close()
        backend.close()
        print("stopped", file=sys.stderr)
        return 0

    return run(PROG, serve)


if __name__ == "__main__":
    sys.exit(main())
