"""Tokens: minting, verification, transport, and the 401 answers."""
import os
import stat
import subprocess
import sys
import time

import jwt
import pytest

from dataserver import Settings
from dispatcher.auth import TokenAuthority, TokenError, load_secret
from tests.dispatcher_support import (PI, REPO, SECRET, app, bearer, client,  # noqa: F401
                                      mint, spectrum)


def test_mint_and_verify_round_trip():
    authority = TokenAuthority(SECRET.encode())
    token = authority.mint("pi@example.org", ["b", "a", " "], hours=2)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "pi@example.org" and claims["roles"] == ["a", "b"]
    assert 7190 <= claims["exp"] - time.time() <= 7201
    identity = authority.verify(token)
    assert identity.subject == "pi@example.org" and identity.roles == {"a", "b"}
    with pytest.raises(ValueError):
        authority.mint(" ", hours=1)
    with pytest.raises(ValueError):
        authority.mint("x", hours=0)


# Parametrised tokens are made at collection, minutes before their test runs: the ones meant to
# be wrong in another way than expiry stay valid that long.
A_DAY_LATER = time.time() + 86400


@pytest.mark.parametrize("token, fragment", [
    (mint(PI, now=time.time() - 7200), "expired at"),
    (jwt.encode({"sub": PI, "exp": A_DAY_LATER}, "another-secret-of-at-least-32-bytes!"),
     "signature does not match"),
    ("not.a.jwt", "not a well-formed"),
    (jwt.encode({"exp": A_DAY_LATER}, SECRET), "no 'sub' claim"),
    (jwt.encode({"sub": PI}, SECRET), "no 'exp' claim"),
    (jwt.encode({"sub": PI, "exp": A_DAY_LATER}, SECRET * 2, algorithm="HS512"),
     "invalid token"),
])
def test_invalid_tokens_are_401_with_a_clear_message(client, token, fragment):
    for reply in (client.get("/api/v1/jobs", headers=bearer(token)),
                  client.get("/api/v1/jobs", query_string={"token": token}),
                  client.post("/api/v1/jobs", json=spectrum(["U1"]), headers=bearer(token)),
                  # Routes that serve anonymous callers refuse a bad token all the same.
                  client.get("/api/v1/instruments", headers=bearer(token)),
                  client.get("/api/v1/instruments/enginetest/products/spectrum",
                             query_string={"token": token}),
                  client.get("/run_analysis", query_string={
                      "instrument": "enginetest", "product_type": "spectrum", "token": token})):
        assert reply.status_code == 401, reply.data
        body = reply.get_json()
        assert body["code"] in ("invalid_token", "token_expired") and fragment in body["error"]
        assert token not in reply.get_data(as_text=True)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_malformed_authorization_header(client):
    reply = client.get("/api/v1/jobs", headers={"Authorization": "Basic abc"})
    assert reply.status_code == 401 and "Bearer" in reply.get_json()["error"]


def test_secret_file_is_created_once_private_and_shared(tmp_path):
    settings = Settings({"data_dir": str(tmp_path)})
    first = load_secret(settings)
    assert first == load_secret(settings) and len(first) >= 32
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(Settings({"data_dir": str(tmp_path), "secret_key": "x" * 40})) == b"x" * 40


def _xoda(*args, env, stdin=""):
    return subprocess.run([sys.executable, "-m", "client.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, **env})


def test_xoda_token_mint_and_check(tmp_path):
    env = {"XODA_DATA_DIR": str(tmp_path), "XODA_SECRET_KEY": SECRET}
    minted = _xoda("token", "mint", "--subject", PI, "--roles", "hxmt-team,admin",
                   "--hours", "3", env=env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    identity = TokenAuthority(SECRET.encode()).verify(token)
    assert identity.subject == PI and identity.roles == {"hxmt-team", "admin"}
    checked = _xoda("token", "check", env=env, stdin=token + "\n")
    assert checked.returncode == 0 and f"subject: {PI}" in checked.stdout
    assert "roles: admin, hxmt-team" in checked.stdout
    # The default lifetime comes from the settings.
    default = _xoda("token", "mint", "--subject", PI, env={**env, "XODA_TOKEN_LIFETIME_H": "1"})
    claims = jwt.decode(default.stdout.strip(), SECRET, algorithms=["HS256"])
    assert 3590 <= claims["exp"] - claims["iat"] <= 3600
    bad = _xoda("token", "mint", "--subject", PI, "--hours", "-2", env=env)
    assert bad.returncode == 2 and "lifetime" in bad.stderr and not bad.stdout
    other = _xoda("token", "check", env={**env, "XODA_SECRET_KEY": "y" * 40}, stdin=token)
    assert other.returncode == 3 and "signature" in other.stderr
    assert token not in other.stderr


def test_verify_raises_token_error_not_a_500():
    with pytest.raises(TokenError) as caught:
        TokenAuthority(SECRET.encode()).verify("")
    assert caught.value.status == 401


# ---- GET /api/v1/whoami: the token checked on the server, for the web form's token field ----
def _whoami(client, token=None):
    return client.get("/api/v1/whoami", headers=bearer(token) if token else {})


def test_whoami_tells_the_subject_roles_and_expiry_of_a_valid_token(client):
    now = time.time()
    token = mint(PI, ["hxmt-team", "admin"], hours=2, now=now)
    reply = _whoami(client, token)
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["anonymous"] is False and body["subject"] == PI
    assert body["roles"] == ["admin", "hxmt-team"]
    expires = int(now) + 7200
    assert body["expires"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires))
    assert body["issued"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(now)))
    assert 7100 < body["expires_in_s"] <= 7200
    # Never the token, and never kept by a cache shared between users.
    assert token not in reply.get_data(as_text=True)
    assert reply.headers["Cache-Control"] == "no-store" and "Authorization" in reply.headers["Vary"]
    # The same answer for the `token` parameter (what oda_api sends).
    assert client.get("/api/v1/whoami", query_string={"token": token}).get_json() == body


def test_whoami_without_a_token_is_anonymous(client):
    reply = _whoami(client)
    assert reply.status_code == 200
    assert reply.get_json() == {"anonymous": True, "subject": None, "roles": [], "issued": None,
                                "expires": None, "expires_in_s": None}


@pytest.mark.parametrize("token, code, fragment", [
    (mint(PI, now=time.time() - 7200), "token_expired", "expired at"),
    (jwt.encode({"sub": PI, "exp": A_DAY_LATER}, "another-secret-of-at-least-32-bytes!"),
     "invalid_token", "signature does not match"),
    ("not.a.jwt", "invalid_token", "not a well-formed"),
], ids=["expired", "other-secret", "garbage"])
def test_whoami_refuses_an_expired_or_invalid_token_with_401(client, token, code, fragment):
    reply = _whoami(client, token)
    assert reply.status_code == 401
    body = reply.get_json()
    assert body["code"] == code and fragment in body["error"]
    assert token not in reply.get_data(as_text=True)
    assert client.get("/api/v1/whoami", headers={"Authorization": "Basic abc"}).status_code == 401


def test_links_and_snippets_of_a_job_submitted_with_a_token_never_hold_it(client):
    token = mint(PI, hours=1)
    reply = client.post("/api/v1/jobs?wait=20", json=spectrum(["U1"]), headers=bearer(token))
    body = reply.get_json()
    assert reply.status_code in (200, 202) and body["link"].startswith("http://localhost/q/enginetest/")
    assert token not in reply.get_data(as_text=True)
    for path in (body["link"].replace("http://localhost", ""), f"/api/v1/jobs/{body['job_id']}/snippet",
                 f"/api/v1/jobs/{body['job_id']}?report=true"):
        answer = client.get(path, headers={**bearer(token), "Accept": "application/json"})
        assert answer.status_code in (200, 202) and token not in answer.get_data(as_text=True), path
