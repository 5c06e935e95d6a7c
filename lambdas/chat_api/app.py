"""Lambda handler of the HTTPS chat API (API Gateway REST, proxy integration).

The resolver, routes, CORS and error mapping are the library's (`openbrain.api`), so `ob-serve` runs the
very same `handler` over local HTTP. API reference: docs/api.md, `GET /openapi.json`, `GET /swagger`.
"""

from openbrain.api.app import handler

__all__ = ["handler"]
