"""The connector redactor on the text shapes secrets take in messages from servers and drivers."""

from __future__ import annotations

import pytest

from lepton_pipelines.connectors import ConnectorError, ConnectorTimeoutError, Redactor


def test_known_secrets_are_masked_in_every_spelling():
    redact = Redactor(["Bearer abc-123-xyz", "p@ss/w0rd:9"])
    assert redact.text("got Bearer abc-123-xyz back") == "got *** back"
    assert redact.text("token abc-123-xyz alone") == "token *** alone"  # the token without its scheme
    assert redact.text("user=p@ss/w0rd:9 enc=p%40ss%2Fw0rd%3A9 form=p%40ss%2Fw0rd%3A9") == "user=*** enc=*** form=***"


def test_credential_shaped_text_is_masked_without_knowing_the_secret():
    redact = Redactor()
    assert redact.text("postgresql://bob:unknown-pw@db:5432/x failed") == "postgresql://bob:***@db:5432/x failed"
    assert redact.text("host=db password=zz9 sslmode=require") == "host=db password=*** sslmode=require"
    assert redact.text("GET /x?api_key=k-77&page=2") == "GET /x?api_key=***&page=2"
    assert (
        redact.text('{"Authorization": "Basic dXNlcjpwdw==", "accept": "*/*"}')
        == '{"Authorization": "***", "accept": "*/*"}'
    )
    assert redact.text("{'authorization': 'Bearer q'}") == "{'authorization': '***'}"
    assert redact.text("Cookie: session=s1; theme=dark\nHost: x") == "Cookie: ***\nHost: x"
    assert Redactor(header_names=["X-Partner-Key"]).text("x-partner-key: k9") == "x-partner-key: ***"
    assert redact.text("http://127.0.0.1:8080/path stays") == "http://127.0.0.1:8080/path stays"


def test_urls_lose_their_userinfo():
    assert Redactor().url("https://user:pw@api.example.com:8443/v1?x=1") == "https://api.example.com:8443/v1?x=1"
    assert Redactor().url("https://token@api.example.com/v1") == "https://api.example.com/v1"


def test_excerpts_are_cut_after_redaction_so_no_half_secret_survives():
    secret = "Bearer abcdefghijklmnop"
    text = "x" * 100 + secret + "y" * 100
    assert Redactor([secret]).excerpt(text, 110) == "x" * 100 + "***" + "y" * 7
    assert "abcdefgh" not in Redactor([secret]).excerpt(text, 110)


def test_fail_chains_a_redacted_stand_in_and_never_the_raw_exception():
    redact = Redactor(["hunter2-secret"])
    try:
        try:
            raise OSError("connect to postgresql://u:hunter2-secret@db failed")
        except OSError as low:
            raise ValueError("wrapper saw hunter2-secret") from low
    except ValueError as exc:
        error = redact.fail("source x: could not read", exc, kind=ConnectorTimeoutError)
    assert isinstance(error, ConnectorTimeoutError) and isinstance(error, ConnectorError)
    assert error.__suppress_context__ and str(error) == "source x: could not read"
    cause = error.__cause__
    assert str(cause) == "builtins.ValueError: wrapper saw ***"
    assert str(cause.__cause__) == "builtins.OSError: connect to postgresql://u:***@db failed"
    assert cause.__traceback__ is not None  # the original frames are kept for debugging


@pytest.mark.parametrize("secret", ["", None, "ab"])
def test_empty_or_tiny_secrets_do_not_mangle_messages(secret):
    assert Redactor([secret]).text("about a table") == "about a table"
