"""`ob-serve`'s command line: what it refuses before it starts anything (the server itself: tests/local/)."""

from __future__ import annotations

import pytest
from support.cli import Cli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("args", "message"), [
    (("--port", "99999"), "argument --port: must be a whole number from 0 to 65535, got '99999'"),
    (("--port", "-1"), "argument --port: must be a whole number from 0 to 65535, got '-1'"),
    (("--workers", "0"), "argument --workers: must be a whole number of at least 1, got '0'"),
    (("--retry-after", "43201"), "argument --retry-after: must be a whole number from 0 to 43200, got '43201'"),
    (("--poll-interval", "nan"), "argument --poll-interval: must be a number from 0.01 to 60.0, got 'nan'"),
    (("--poll-interval", "0"), "argument --poll-interval: must be a number from 0.01 to 60.0, got '0'"),
    (("--origin", "notaurl"), "argument --origin: origin 'notaurl' must be http(s)://host[:port]"),  # as ob-admin's
])
def test_a_bad_option_is_a_usage_error(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli.run("ob-serve", *args)

    assert result.returncode == 2, result
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: ob-serve ")
    assert result.stderr.splitlines()[-1] == f"ob-serve: error: {message}"
    assert not cli.store.exists()  # nothing started, nothing stored
