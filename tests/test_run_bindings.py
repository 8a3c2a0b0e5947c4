"""`make run` binds where the settings say and shares one action-server secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.run import commands, environment
from bot.settings import Settings, SettingsError


def test_addresses_and_secret_come_from_settings(tmp_path: Path, model_path: Path) -> None:
    settings = Settings.from_env(
        {"BOT_DATA_DIR": str(tmp_path), "RASA_HOST": "127.0.0.2", "ACTIONS_HOST": "127.0.0.3", "WEB_HOST": "127.0.0.4"}
    )
    cmd = commands(settings, 5005, 5055, 8080, tmp_path / "credentials.yml")
    assert cmd["rasa"][cmd["rasa"].index("-i") + 1] == "127.0.0.2"
    assert cmd["web"][cmd["web"].index("--host") + 1] == "127.0.0.4"
    env = environment(settings)
    assert env["SANIC_HOST"] == "127.0.0.3"  # what `rasa run actions` binds
    assert env["SANIC_REQUEST_MAX_SIZE"] == "65536"
    secret = env["ACTION_SERVER_SECRET"]
    assert len(secret) >= 32
    assert (tmp_path / "action-server-secret").read_text(encoding="utf-8").strip() == secret
    assert (tmp_path / "action-server-secret").stat().st_mode & 0o077 == 0
    assert environment(settings)["ACTION_SERVER_SECRET"] == secret  # stable across restarts


def test_defaults_are_loopback_only() -> None:
    settings = Settings.from_env({})
    assert (settings.rasa_host, settings.actions_host, settings.web_host) == ("127.0.0.1",) * 3


def test_production_needs_an_action_server_secret() -> None:
    env = {"BOT_ENV": "production", "RASA_AUTH_TOKEN": "r" * 32,
           "SPOOL_KEY": Fernet.generate_key().decode(),
           "SMTP_HOST": "smtp.clinic.test", "NOTIFY_EMAIL_TO": "reception@clinic.test"}
    with pytest.raises(SettingsError, match="ACTION_SERVER_SECRET"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "ACTION_SERVER_SECRET": "a" * 32}).is_production


def test_the_supervisor_imports_nothing_heavy() -> None:
    """`python -m bot.run` only supervises: Rasa, TensorFlow, spaCy, SQLAlchemy stay in children."""
    code = ("import sys, bot.run; heavy = {'rasa', 'tensorflow', 'spacy', 'sqlalchemy', 'sanic', 'numpy'}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"


def test_rasa_gets_the_token_and_the_action_server_url_through_the_environment(
    tmp_path: Path, model_path: Path
) -> None:
    settings = Settings.from_env({"BOT_DATA_DIR": str(tmp_path), "RASA_AUTH_TOKEN": "t" * 32,
                                  "ACTIONS_HOST": "0.0.0.0"})
    cmd = commands(settings, 5005, 6055, 8080)
    assert "t" * 32 not in " ".join(" ".join(c) for c in cmd.values())
    assert cmd["rasa"][1:4] == ["-m", "bot.rasa_server", "run"]
    env = environment(settings, 6055)
    assert env["RASA_AUTH_TOKEN"] == "t" * 32
    assert env["ACTION_SERVER_URL"] == "http://127.0.0.1:6055/webhook"  # wildcard bind: loopback


def test_a_token_on_the_command_line_is_refused(tmp_path: Path) -> None:
    from bot.rasa_server import rasa_argv

    settings = Settings.from_env({"BOT_DATA_DIR": str(tmp_path)})
    with pytest.raises(SystemExit, match="RASA_AUTH_TOKEN"):
        rasa_argv(["run", "--enable-api", "--auth-token", "x"], settings)
    assert rasa_argv(["run"], settings) == ["rasa", "run"]  # no API, no token


@pytest.mark.parametrize("token", ["-Jx2kq_" + "t" * 36, "--" + "t" * 40, "t" * 43])
def test_rasa_reads_any_generated_token_even_one_that_starts_with_a_dash(tmp_path: Path, token: str) -> None:
    from rasa.__main__ import create_argument_parser

    from bot.rasa_server import rasa_argv

    settings = Settings.from_env({"BOT_DATA_DIR": str(tmp_path), "RASA_AUTH_TOKEN": token})
    parsed = create_argument_parser().parse_args(rasa_argv(["run", "--enable-api"], settings)[1:])
    assert parsed.auth_token == token and parsed.enable_api
