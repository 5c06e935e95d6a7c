"""Lambda handler of the streaming WebSocket API (API Gateway WebSocket: `$connect`, `$default`,
`$disconnect`) and of its scheduled sweep of connections that never acknowledged.

The protocol is the library's (`openbrain.api.websocket`), so `ob-serve` serves the very same handlers on
`/ws`. Protocol reference: docs/api.md, Streaming.
"""

from openbrain.api.websocket import handler

__all__ = ["handler"]
