"""`pochta demo`: the web app and a local mail server together, so every page works with no
mail account of one's own.

The mail server (SMTP with STARTTLS, POP3 over TLS, its own CA) runs in this process; the web
app runs under gunicorn as in production, pointed at the mail server by the POCHTA_*
variables. Ctrl-C stops both.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from app.demo.seed import seed_demo_mail
from app.demo.server import DemoMailServer
from app.mail.security import Security
from app.serving import start_gunicorn, stop_gunicorn


@dataclass(frozen=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("pochta-demo")
    smtp_port: int = 2525
    pop3_port: int = 1995


def app_environment(options: DemoOptions, server: DemoMailServer) -> dict[str, str]:
    """The POCHTA_* settings that point the app at the demo mail server."""
    return {
        "POCHTA_DATA_DIR": str((options.data_dir / "app").absolute()),
        "POCHTA_CA_FILE": str(server.ca_file.absolute()),
        "POCHTA_SMTP_HOST": "localhost",
        "POCHTA_SMTP_PORT": str(server.smtp_port),
        "POCHTA_SMTP_SECURITY": Security.STARTTLS.value,
        "POCHTA_POP3_HOST": "localhost",
        "POCHTA_POP3_PORT": str(server.pop3_port),
        "POCHTA_POP3_SECURITY": Security.TLS.value,
        "POCHTA_ALLOWED_HOSTS": "localhost,127.0.0.1",
    }


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def banner(url: str, server: DemoMailServer) -> str:
    logins = ", ".join(
        f"{server.address(user)} / {password}" for user, password in server.users.items()
    )
    return (
        f"\nPochta demo is running at {url}\n"
        f"  Log in with {logins}\n"
        f"  (the mail server settings are already filled in).\n"
        f"  Mail server: SMTP localhost:{server.smtp_port} (STARTTLS), "
        f"POP3 localhost:{server.pop3_port} (TLS), CA {server.ca_file}\n"
        f"  Press Ctrl-C to stop.\n"
    )


def run_demo(options: DemoOptions) -> int:
    """Run until interrupted; the exit status of the whole demo."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    server = DemoMailServer(
        options.data_dir / "mail",
        smtp_port=options.smtp_port,
        pop3_port=options.pop3_port,
        smtp_security=Security.STARTTLS,
        pop3_security=Security.TLS,
    )
    try:
        server.start()
    except OSError as exc:
        print(f"pochta demo: cannot start the mail server: {exc}", file=sys.stderr)
        return 1
    web = None
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop)
    # Ctrl-C stops the demo even when it was started with SIGINT ignored, as a shell does
    # for a job it runs in the background without job control.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        seed_demo_mail(server.mailboxes)
        web = start_gunicorn(f"{options.host}:{options.port}", app_environment(options, server))
        url = f"http://{options.host}:{options.port}/"
        if not _wait_until_serving(url, web, 30):
            print(f"pochta demo: the web app did not start on {url}", file=sys.stderr)
            return 1
        print(banner(url, server), flush=True)
        while not stopping and web.poll() is None:
            time.sleep(0.3)
        return 0 if stopping else 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if web is not None:
            stop_gunicorn(web)
        server.stop()
        print("Pochta demo stopped.", flush=True)
