"""``[mail]`` (``broker.config.sections.mail_section``; issue 17): the SMTP server of e-mail notices to citizens,
off without ``smtp_host``, STARTTLS unless the server is on this machine, the password from a file or the
environment, never in a repr; and the wiring's mailer (``broker.web.services.mailer_of``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config.sections import MailSettings
from broker.config.settings import load_settings
from broker.keys.keyring import write_private
from broker.notify.smtp import SmtpMailer
from broker.web.services import mailer_of
from tests.config_support import instance as config_instance
from tests.config_support import problems


def instance(folder: Path, mail: str) -> Path:
    return config_instance(folder, "[mail]\n" + mail)


def test_no_smtp_host_no_mail(tmp_path: Path) -> None:
    settings = load_settings(instance(tmp_path, ""), {})
    assert settings.mail == MailSettings() and settings.mail.smtp_host == ""
    assert mailer_of(settings) is None
    # the other keys are known (no "unknown setting") and ignored without a host
    quiet = load_settings(instance(tmp_path / "b", 'smtp_port = 2525\nstarttls = false\nfrom_address = ""\n'), {})
    assert quiet.mail == MailSettings()


def test_a_full_mail_section(tmp_path: Path) -> None:
    write_private(tmp_path / "certs" / "smtp.password", b"hunter2-but-longer\n")
    config = instance(tmp_path, """
smtp_host = "smtp.city.example"
smtp_port = 2587
from_address = "City sign-in <no-reply@city.example>"
username = "broker"
password_file = "certs/smtp.password"
timeout_seconds = 5
""")
    settings = load_settings(config, {})
    assert settings.mail == MailSettings("smtp.city.example", 2587, True, "City sign-in <no-reply@city.example>",
                                         "broker", "hunter2-but-longer", 5)
    assert "hunter2" not in repr(settings) and "hunter2" not in repr(settings.mail)
    mailer = mailer_of(settings)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.settings.host, mailer.settings.port, mailer.settings.starttls, mailer.settings.password,
            mailer.settings.timeout_seconds) == ("smtp.city.example", 2587, True, "hunter2-but-longer", 5)
    assert "hunter2" not in repr(mailer.settings)
    from_env = load_settings(config, {"BROKER_MAIL_PASSWORD": "from-the-environment",
                                      "BROKER_MAIL_SMTP_HOST": "relay.city.example"})
    assert (from_env.mail.password, from_env.mail.smtp_host) == ("from-the-environment", "relay.city.example")


def test_defaults_with_a_host(tmp_path: Path) -> None:
    settings = load_settings(instance(tmp_path, 'smtp_host = "smtp.city.example"\n'
                                                'from_address = "no-reply@city.example"\n'), {})
    assert settings.mail == MailSettings("smtp.city.example", 587, True, "no-reply@city.example", "", "", 10)


def test_plain_smtp_only_on_this_machine(tmp_path: Path) -> None:
    local = 'smtp_host = "localhost"\nsmtp_port = 25\nstarttls = false\nfrom_address = "a@city.example"\n'
    assert load_settings(instance(tmp_path / "a", local), {}).mail.starttls is False
    remote = local.replace("localhost", "smtp.city.example")
    assert problems(instance(tmp_path / "b", remote)) == [
        "[mail] starttls = false is allowed only for a server on this machine (localhost); "
        "a remote server must offer STARTTLS"]


@pytest.mark.parametrize(("mail", "problem"), [
    ('smtp_host = "smtp.city.example"\n', "[mail] from_address is required when smtp_host is set"),
    ('smtp_host = "smtp.city.example"\nfrom_address = "City sign-in"\n',
     "[mail] from_address must be an e-mail address or 'Name <address>', got 'City sign-in'"),
    ('smtp_host = "s.city.example"\nfrom_address = "a@city.example"\nusername = "broker"\n',
     "[mail] username and password_file (or BROKER_MAIL_PASSWORD) go together"),
    ('smtp_host = "s.city.example"\nfrom_address = "a@city.example"\nsmtp_port = 0\n',
     "[mail] smtp_port must be between 1 and 65535, got 0"),
    ('smtp_host = "s.city.example"\nfrom_address = "a@city.example"\ntimeout_seconds = 600\n',
     "[mail] timeout_seconds must be between 1 and 120, got 600"),
    ('smtp_host = "s.city.example"\nfrom_address = "a@city.example"\nstarttls = "maybe"\n',
     "[mail] starttls must be true or false, got 'maybe'"),
    ('smtp_host = "s.city.example"\nfrom_address = "a@city.example"\npassword_file = "nowhere"\n',
     "cannot read password_file"),
    ('smtp_host = "s.city.example"\nfrom_adress = "a@city.example"\n',
     "[mail] unknown setting 'from_adress' (did you mean 'from_address'?)"),
])
def test_mail_problems_are_config_errors(tmp_path: Path, mail: str, problem: str) -> None:
    found = problems(instance(tmp_path, mail))
    assert any(p.startswith(problem) for p in found), found


def test_a_password_smtplib_cannot_send_is_refused(tmp_path: Path) -> None:
    config = instance(tmp_path, 'smtp_host = "s.city.example"\nfrom_address = "a@city.example"\nusername = "b"\n')
    assert problems(config, {"BROKER_MAIL_PASSWORD": "pässword"}) == [
        "[mail] the password (password_file or BROKER_MAIL_PASSWORD) must be ASCII text"]
