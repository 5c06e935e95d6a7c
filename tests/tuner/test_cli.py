"""`ob-tuner`'s access rule: open on loopback, a login everywhere else, and refusing to start without one."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from openbrain.cli.ob_tuner import MIN_PASSWORD_CHARS, access, main
from openbrain.errors import ConfigurationError

from .browser import tuner

PASSWORD = "correct-horse-battery"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_needs_no_password_but_uses_one_when_set(host: str) -> None:
    assert access(host, "operator", None) is None
    assert access(host, "operator", PASSWORD) == ("operator", PASSWORD)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "tuner.example.com"])
def test_any_other_address_requires_a_long_enough_password(host: str) -> None:
    with pytest.raises(ConfigurationError, match="set OB_TUNER_PASSWORD"):
        access(host, "operator", None)
    with pytest.raises(ConfigurationError, match=f"at least {MIN_PASSWORD_CHARS}"):
        access(host, "operator", "short")
    assert access(host, "ops", PASSWORD) == ("ops", PASSWORD)


def test_the_cli_refuses_to_listen_openly_with_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--host", "0.0.0.0", "--port", "7999"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("ob-tuner: error: --host 0.0.0.0 makes the tuner reachable from other machines")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_short_password_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OB_TUNER_PASSWORD", "short")

    assert main(["--host", "127.0.0.1", "--port", "7999"]) == 1
    assert "OB_TUNER_PASSWORD must be at least" in capsys.readouterr().err


def _status(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None) -> int:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.e2e
def test_with_a_password_nothing_but_the_login_page_answers_before_logging_in(tmp_path: Path) -> None:
    with tuner(tmp_path, OB_TUNER_USER="ops", OB_TUNER_PASSWORD=PASSWORD, NO_PROXY="127.0.0.1") as url:
        browser = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                              urllib.request.HTTPCookieProcessor(CookieJar()))

        assert _status(browser, url + "config") == 401  # the page's components and their endpoints
        assert _status(browser, url + "gradio_api/info") == 401  # the API that runs the buttons
        assert _status(browser, url + "login", {"username": "ops", "password": "wrong-password-123"}) == 400
        assert _status(browser, url + "login", {"username": "operator", "password": PASSWORD}) == 400
        assert _status(browser, url + "login", {"username": "ops", "password": PASSWORD}) == 200
        assert _status(browser, url + "config") == 200
        assert "log in as 'ops'" in (tmp_path / "ob-tuner.log").read_text()
