"""Secret references (openbrain/aws/secrets.py) resolved through moto SSM and Secrets Manager."""

from __future__ import annotations

import logging

import pytest

from openbrain.aws.backend import Backend
from openbrain.aws.secrets import SecretResolver, parse_ref, resolver_for
from openbrain.core.errors import ConfigurationError, InvalidInputError

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_ssm_securestring_is_decrypted(backend: Backend) -> None:
    backend.client("ssm").put_parameter(Name="/ob/acme/hook", Value="p4ram", Type="SecureString")

    assert SecretResolver(backend).resolve("ssm:/ob/acme/hook") == "p4ram"


def test_a_secrets_manager_secret_by_name_or_arn(backend: Backend) -> None:
    arn = backend.client("secretsmanager").create_secret(Name="ob/acme", SecretString="sm-value")["ARN"]

    resolver = SecretResolver(backend)

    assert resolver.resolve("secretsmanager:ob/acme") == "sm-value"
    assert resolver.resolve(f"secretsmanager:{arn}") == "sm-value"


def test_values_are_cached_briefly_and_can_be_invalidated(backend: Backend) -> None:
    ssm = backend.client("ssm")
    ssm.put_parameter(Name="/ob/rotating", Value="one", Type="SecureString")
    clock = Clock()
    resolver = SecretResolver(backend, ttl_seconds=60, clock=clock)
    assert resolver.resolve("ssm:/ob/rotating") == "one"
    ssm.put_parameter(Name="/ob/rotating", Value="two", Type="SecureString", Overwrite=True)

    assert resolver.resolve("ssm:/ob/rotating") == "one"
    clock.now += 61
    assert resolver.resolve("ssm:/ob/rotating") == "two"
    ssm.put_parameter(Name="/ob/rotating", Value="three", Type="SecureString", Overwrite=True)
    resolver.invalidate("ssm:/ob/rotating")
    assert resolver.resolve("ssm:/ob/rotating") == "three"


@pytest.mark.parametrize("ref", ["", "/no/scheme", "vault:/x", "ssm:", "secretsmanager:  "])
def test_a_malformed_reference_is_invalid_input(ref: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_ref(ref)


@pytest.mark.parametrize("ref", ["ssm:/ob/missing", "secretsmanager:ob/missing"])
def test_a_missing_secret_is_a_configuration_error_naming_the_reference(
    backend: Backend, ref: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SecretResolver(backend).resolve(ref)

    assert ref in caught.value.message


def test_the_value_is_never_logged(backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    backend.client("ssm").put_parameter(Name="/ob/quiet", Value="never-log-me", Type="SecureString")

    # (botocore itself logs response bodies at DEBUG: never run it at DEBUG where secrets are read)
    with caplog.at_level(logging.INFO), caplog.at_level(logging.DEBUG, logger="openbrain"):
        resolver = SecretResolver(backend)
        resolver.resolve("ssm:/ob/quiet")
        with pytest.raises(ConfigurationError):
            resolver.resolve("ssm:/ob/never-created")

    assert "never-log-me" not in caplog.text
    assert "ssm:/ob/never-created" in caplog.text


def test_each_backend_gets_its_own_resolver(backend: Backend) -> None:
    assert resolver_for(backend) is resolver_for(backend)


def test_model_keys_may_come_from_ob_model_key_variables_only(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("OB_MODEL_KEY_GROQ", "gsk-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-profiles")
    resolver = SecretResolver(backend)

    # then: only for model credentials, only with the prefix, and an unset one says so
    assert resolver.resolve("env:OB_MODEL_KEY_GROQ", env=True) == "gsk-test"
    with pytest.raises(InvalidInputError):
        resolver.resolve("env:OB_MODEL_KEY_GROQ")  # a webhook secret reference is never env:
    with pytest.raises(InvalidInputError, match="OB_MODEL_KEY_"):
        resolver.resolve("env:AWS_SECRET_ACCESS_KEY", env=True)
    with pytest.raises(ConfigurationError, match="OB_MODEL_KEY_UNSET is not set"):
        resolver.resolve("env:OB_MODEL_KEY_UNSET", env=True)
