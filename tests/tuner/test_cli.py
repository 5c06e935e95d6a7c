"""Who may reach `ob-tuner` (openbrain/tuner/access.py and the CLI): open on loopback to requests addressed
to loopback, a login everywhere else, refusing to start without one; and over real HTTP, that the login
and the Host check hold and that gradio's share link and API stay off."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from support.browser import tuner
from support.cli import BIN, TIMEOUT, usage_error

from openbrain.cli.ob_tuner import main
from openbrain.core.errors import ConfigurationError
from openbrain.tuner.access import MIN_PASSWORD_CHARS, access, host_name, is_loopback

PASSWORD = "correct-horse-battery"
LOOPBACK = ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1"]
ELSEWHERE = ["0.0.0.0", "::", "192.168.1.20", "tuner.example.com", "localhost.example.com"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_needs_no_password_but_uses_one_when_set(host: str) -> None:
    assert is_loopback(host)
    assert access(host, "operator", None) is None
    assert access(host, "operator", PASSWORD) == ("operator", PASSWORD)


@pytest.mark.parametrize("host", ELSEWHERE)
def test_any_other_address_requires_a_long_enough_password(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match="set OB_TUNER_PASSWORD"):
        access(host, "operator", None)
    with pytest.raises(ConfigurationError, match=f"at least {MIN_PASSWORD_CHARS}"):
        access(host, "operator", "short")
    assert access(host, "ops", PASSWORD) == ("ops", PASSWORD)


@pytest.mark.parametrize(("header", "name"), [
    ("127.0.0.1:7860", "127.0.0.1"), ("LocalHost", "localhost"), ("[::1]:7860", "::1"), ("[::1]", "::1"),
    ("evil.example:7860", "evil.example"), ("", ""),
])
def test_host_headers_are_read_without_their_port(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("port", ["65536", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str], port: str) -> None:
    assert usage_error(capsys, main, "--port", port) == (
        f"ob-tuner: error: argument --port: must be a whole number from 0 to 65535, got '{port}'")


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


# --- over real HTTP ---------------------------------------------------------------------------------------

def _status(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None) -> int:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(url: str, host: str) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", parts.path + "config", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


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


@pytest.mark.e2e
def test_without_a_password_only_requests_addressed_to_loopback_are_answered(tmp_path: Path) -> None:
    # GRADIO_SHARE would open a public link around the loopback rule: ob-tuner never asks for one
    with tuner(tmp_path, GRADIO_SHARE="True") as url:
        port = urllib.parse.urlsplit(url).port

        assert _get(url, f"127.0.0.1:{port}")[0] == 200
        assert _get(url, f"localhost:{port}")[0] == 200
        status, body = _get(url, f"rebound.evil.example:{port}")  # a DNS-rebinding page's requests
        assert status == 421 and b"loopback" in body
        with urllib.request.urlopen(url + "gradio_api/info", timeout=30) as response:
            api = json.loads(response.read())
        assert api["named_endpoints"] == {}  # the page's listeners are not an API
        assert "gradio.live" not in (tmp_path / "ob-tuner.log").read_text()


@pytest.mark.e2e
def test_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(BIN / "ob-tuner"), "--port", str(port)], capture_output=True, text=True, timeout=TIMEOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OB_MEMORY_STORE": "none",
                 "GRADIO_ANALYTICS_ENABLED": "False"},
        )

    assert result.returncode == 1, result
    assert result.stderr.strip().startswith(f"ob-tuner: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr
