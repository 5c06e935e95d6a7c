"""End-user identity: who a widget request speaks for (docs/api.md, End-user identity).

A client's own server vouches for its signed-in users with the client's identity secret, either by an HMAC of
the user id (`X-User-Id` + `X-User-Hash`) or by a short-lived widget token (`X-Widget-Token`, a JWT); the
checks are in `services/identity.py`. What they yield is an `EndUser`: the user id (None for an anonymous
visitor) and, for a token scoped to a profile, that profile. A session started by a verified user is bound to
that user; `EndUser.may_use` says whether a caller may see or continue a session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from openbrain.core.errors import InvalidInputError

MAX_USER_ID_CHARS = 256
TOKEN_AUDIENCE = "openbrain-widget"  # noqa: S105 (a name, not a secret)
MAX_TOKEN_SECONDS = 3600  # a widget token lives at most an hour
# The one answer to any identity that does not verify: it never says which part failed.
IDENTITY_REFUSED = "the end-user identity (X-User-Id + X-User-Hash, or X-Widget-Token) could not be verified"
IDENTITY_REQUIRED = "this client requires a verified end-user identity (X-User-Id + X-User-Hash, or X-Widget-Token)"


# 1-256 printable ASCII characters, not starting or ending with a space: what travels unchanged in an HTTP header
# (`X-User-Id`: browsers refuse a header value outside ISO-8859-1, servers strip the spaces around one), written as
# one regular expression that Python and the OpenAPI document's readers (ECMA-262) read alike. A site whose user
# ids are other text sends a digest or an encoding of them.
USER_ID_PATTERN = rf"^[!-~](?:[ -~]{{0,{MAX_USER_ID_CHARS - 2}}}[!-~])?$"
USER_ID_RULE = f"1-{MAX_USER_ID_CHARS} printable ASCII characters, not starting or ending with a space"
_USER_ID = re.compile(USER_ID_PATTERN)


def is_user_id(value: object) -> bool:
    """Whether `value` is a user id (`USER_ID_RULE`)."""
    return isinstance(value, str) and _USER_ID.fullmatch(value) is not None


def validate_user_id(value: object) -> str:
    if not is_user_id(value):
        raise InvalidInputError(f"a user id is {USER_ID_RULE}")
    return str(value)


@dataclass(frozen=True)
class EndUser:
    """The end user a request speaks for: `user_id` verified (None: an anonymous visitor), the one profile
    a widget token was scoped to (None: any), and when that token expires."""

    user_id: str | None = None
    profile: str | None = None
    expires_at: datetime | None = field(default=None, compare=False)  # a widget token's `exp`: a connection
    # verified with it (the WebSocket's ack) is the user's until then

    def may_use(self, owner: str | None, profile_name: str) -> bool:
        """Whether this user may see or continue a session bound to `owner` (None: nobody) of `profile_name`."""
        return (owner is None or owner == self.user_id) and self.may_start(profile_name)

    def may_start(self, profile_name: str) -> bool:
        """Whether this user may start a session of `profile_name`."""
        return self.profile is None or self.profile == profile_name


ANONYMOUS = EndUser()
