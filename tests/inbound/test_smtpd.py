"""The built-in SMTP listener, spoken to with smtplib: in-process (its real aiosmtpd
server on a free port) and as the real `manage.py smtpd` process."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from ircore.testing import free_loopback_port
from tests.inbound.conftest import make_email

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def integration_address(transactional_db, service_a, make_integration):
    integration = make_integration(service_a, kind="email")
    return f"{integration.token}@in.example.net"


def test_smtp_accepts_a_known_recipient_and_the_task_opens_the_incident(smtp_server, integration_address):
    from incidents.models import Incident
    from ircore.models import InboundMessage

    msg = make_email(subject="Disk full on db1", to=integration_address)
    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
        code, banner = client.ehlo()
        assert code == 250
        assert b"SIZE 65536" in banner
        refused = client.send_message(msg, from_addr="nagios@monitoring.example.com",
                                      to_addrs=[integration_address])
    assert refused == {}
    row = InboundMessage.objects.get()
    assert row.received_via == "smtp"
    assert row.mail_from == "nagios@monitoring.example.com"
    assert row.recipients == [integration_address]
    assert row.remote_addr == "127.0.0.1"
    assert row.status == "processed", row.result
    assert Incident.objects.get().title == "Disk full on db1"


def test_unknown_recipient_and_other_domains_get_550_at_rcpt(smtp_server, integration_address):
    from ircore.models import InboundMessage

    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
        client.ehlo()
        client.mail("someone@example.org")
        assert client.rcpt("0000dead@in.example.net")[0] == 550
        assert client.rcpt(integration_address.replace("in.example.net", "elsewhere.example"))[0] == 550
        assert client.rcpt("postmaster@in.example.net")[0] == 550
        assert client.rcpt(integration_address)[0] == 250
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
            client.send_message(make_email(), from_addr="a@example.org", to_addrs=["nobody@in.example.net"])
    assert not InboundMessage.objects.exists()


def test_oversize_messages_are_refused_with_552_and_logged(smtp_server, integration_address):
    from ircore.models import InboundMessage, SecurityLogEntry

    big = make_email(to=integration_address, body=("x" * 70 + "\n") * 1000)
    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
        # smtplib announces SIZE in MAIL FROM when the server offers it: refused there.
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(big, from_addr="a@example.org", to_addrs=[integration_address])
        assert refused.value.smtp_code == 552
    with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
        # A client that does not declare the size: refused after DATA.
        client.ehlo()
        client.mail("a@example.org")
        client.rcpt(integration_address)
        code, _ = client.data(big.as_string())
        assert code == 552
    assert not InboundMessage.objects.exists()
    entries = list(SecurityLogEntry.objects.values_list("reason", "sender"))
    assert entries == [("oversize", "a@example.org")] * 2


def test_manage_py_smtpd_process(tmp_path):
    """The real command in its own process, with its own SQLite database."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "IRCORE_LOCAL_RUN": "1",
           "IRCORE_VAR_DIR": str(tmp_path), "INBOUND_EMAIL_DOMAIN": "in.example.net", "LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True,
                   timeout=300)
    setup = (
        "from ircore.models import Team; from incidents.models import Service, Integration; "
        "t = Team.objects.create(name='T', slug='t'); s = Service.objects.create(team=t, name='s'); "
        "print(Integration.objects.create(service=s, kind='email', name='mail').token)"
    )
    token = subprocess.run([sys.executable, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1]
    port = free_loopback_port()
    server = subprocess.Popen([sys.executable, "manage.py", "smtpd", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening on 127.0.0.1:" in server.stdout.readline()
        to = f"{token}@in.example.net"
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.rcpt("x@in.example.net")[0] == 503  # no MAIL yet: the server is strict
            client.send_message(make_email(subject="Disk full on db1", to=to), from_addr="n@example.com",
                                to_addrs=[to])
            client.mail("n@example.com")
            assert client.rcpt("nobody@in.example.net")[0] == 550
    finally:
        server.terminate()
        server.wait(timeout=20)
    check = ("from ircore.models import InboundMessage; m = InboundMessage.objects.get(); "
             "print(m.received_via, m.status, m.subject)")
    # The worker (qcluster) is not running here: the message is stored and queued.
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", check], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1]
    assert out == "smtp received Disk full on db1"
    queued = ("from django_q.models import OrmQ; print(OrmQ.objects.count())")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", queued], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.strip().splitlines()[-1]
    assert out == "1"


def test_starttls_when_a_certificate_is_configured(transactional_db, settings, tmp_path, integration_address):
    import ssl
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from incidents.models import Incident
    from ircore.smtp_server import controller_build

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "in.example.net")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    settings.INBOUND_SMTP_TLS_CERT = str(tmp_path / "cert.pem")
    settings.INBOUND_SMTP_TLS_KEY = str(tmp_path / "key.pem")
    controller = controller_build(host="127.0.0.1", port=free_loopback_port())
    controller.start()
    try:
        client_context = ssl.create_default_context()
        client_context.check_hostname = False
        client_context.verify_mode = ssl.CERT_NONE  # self-signed in the test
        with smtplib.SMTP(controller.hostname, controller.port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            assert client.starttls(context=client_context)[0] == 220
            client.ehlo()
            client.send_message(make_email(subject="Disk full on db1", to=integration_address),
                                from_addr="n@example.com", to_addrs=[integration_address])
    finally:
        controller.stop()
    assert Incident.objects.get().title == "Disk full on db1"


def _other_sessions() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_the_listener_leaves_no_database_session_behind(smtp_server, integration_address):
    """Each message's database work runs in a fresh context (asyncio.to_thread), whose
    connection no later message reuses: it must be closed, not left to the garbage collector
    (with CONN_MAX_AGE it outlived the message, one idle PostgreSQL session per email)."""
    import gc
    import time

    from ircore.models import InboundMessage

    gc.collect()
    gc.disable()  # what the collector would close is exactly what must not be left over
    try:
        before = _other_sessions()
        for n in range(4):
            with smtplib.SMTP(smtp_server.hostname, smtp_server.port, timeout=10) as client:
                client.send_message(make_email(subject=f"Disk full on db{n}", to=integration_address),
                                    from_addr="nagios@monitoring.example.com", to_addrs=[integration_address])
        deadline = time.monotonic() + 3
        while _other_sessions() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _other_sessions() == before
    finally:
        gc.enable()
    assert InboundMessage.objects.filter(status="processed").count() == 4
