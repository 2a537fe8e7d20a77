"""The controller's authentication options are checked before anything starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tether.cli.main import cli

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert-file", "tls.crt"], "--tls-cert-file and --tls-key-file go together"),
        (["--tls-key-file", "tls.key"], "--tls-cert-file and --tls-key-file go together"),
        (["--session-ttl", "0s"], "--session-ttl must be more than 0, not '0s'"),
    ],
)
def test_a_bad_auth_option_exits_2_naming_it(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["controller", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_the_options_are_documented_in_help() -> None:
    result = CliRunner().invoke(cli, ["controller", "--help"])
    assert result.exit_code == 0
    for option in ("--metrics-public", "--tls-cert-file", "--session-ttl", "--secure-cookies"):
        assert option in result.output
