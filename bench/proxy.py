"""The shipped nginx configuration (deploy/nginx/), filled in and run as a plain process in front of gunicorn.

The tests and the slow-client benchmark run the real Debian nginx with the shipped template: only the
placeholders differ (a free loopback port, gunicorn's port), wrapped in a minimal main configuration whose
pid file, logs and temporary folders live in a fresh directory - no system service, no privileged port.

    python -m bench.proxy     # rewrite deploy/nginx/hairloss.conf from the template and the defaults
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .processes import Listening, stop

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "hairloss.conf.template"
RENDERED = ROOT / "deploy" / "nginx" / "hairloss.conf"
# The placeholders and their defaults; the body limits are the service's own defaults (service/config.py).
DEFAULTS: dict[str, str] = {
    "HAIRLOSS_UPSTREAM": "127.0.0.1:8000",
    "NGINX_LISTEN": "8080",
    "MAX_BODY_BYTES": "1048576",
    "CDS_HOOKS_MAX_BODY_BYTES": "8388608",
}
# What envsubst replaces: ${NAME} with an upper-case NAME. nginx's own variables are lower case.
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def render(values: Mapping[str, str] | None = None, template: str | None = None) -> str:
    """The template with its placeholders filled (defaults for those not given); an unknown one is an error."""
    filled = {**DEFAULTS, **(values or {})}
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in filled:
            raise KeyError(f"no value for ${{{name}}} in {TEMPLATE.name}")
        return filled[name]

    return PLACEHOLDER.sub(value, text)


def placeholders(template: str | None = None) -> set[str]:
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    return set(PLACEHOLDER.findall(text))


def nginx_binary() -> str | None:
    """nginx from PATH, or Debian's /usr/sbin/nginx (not on an unprivileged user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main_config(prefix: Path, site: Path) -> str:
    """A minimal nginx.conf around the site snippet: everything nginx writes stays under `prefix`.

    Run as root (CI containers), nginx drops its workers to `nobody`; they then need to reach the
    temporary folders, which nginx creates and hands to that user itself.
    """
    user = ""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};"
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
error_log {prefix / "error.log"} warn;
pid {prefix / "nginx.pid"};
events {{
    worker_connections 1024;
}}
http {{
{temp}
    access_log off;
    include {site};
}}
"""


@dataclass
class Proxy(Listening):
    prefix: Path

    def log(self) -> str:
        """The access log (stdout) and the error log."""
        parts = []
        for name in ("stdout.log", "error.log"):
            path = self.prefix / name
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)


def write_config(prefix: Path, values: Mapping[str, str]) -> Path:
    """The rendered site snippet and its main configuration under `prefix`; returns the main file."""
    site = prefix / "hairloss.conf"
    site.write_text(render(values), encoding="utf-8")
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, site), encoding="utf-8")
    return conf


def check_config(values: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the template filled with `values` (the upstream host must resolve)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    with tempfile.TemporaryDirectory(prefix="hairloss-nginx-") as tmp:
        prefix = Path(tmp)
        prefix.chmod(0o755)
        conf = write_config(prefix, values)
        return subprocess.run(
            [binary, "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            capture_output=True,
            text=True,
            timeout=30,
        )


@contextmanager
def nginx(upstream: str, *, values: Mapping[str, str] | None = None, startup_timeout: float = 15.0) -> Iterator[Proxy]:
    """nginx with the shipped template in front of `upstream` (host:port), on a free 127.0.0.1 port."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    with tempfile.TemporaryDirectory(prefix="hairloss-nginx-") as tmp:
        prefix = Path(tmp)
        prefix.chmod(0o755)  # workers running as nobody reach their temporary folders through it
        port = free_port()
        conf = write_config(
            prefix, {"HAIRLOSS_UPSTREAM": upstream, "NGINX_LISTEN": f"127.0.0.1:{port}", **(values or {})}
        )
        cmd = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
        with (prefix / "stdout.log").open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        proxy = Proxy("127.0.0.1", port, proc, prefix)
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"nginx did not start:\n{proxy.log()}")
                try:
                    socket.create_connection((proxy.host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"nginx does not listen on {port}:\n{proxy.log()}") from None
                    time.sleep(0.05)
            yield proxy
        finally:
            stop(proc, timeout=15.0)


def default_site() -> str:
    """deploy/nginx/hairloss.conf: the template with the defaults, for a plain nginx install."""
    header = f"# Generated by `python -m bench.proxy` from {TEMPLATE.name} with the defaults: edit the template.\n"
    return header + render()


if __name__ == "__main__":
    RENDERED.write_text(default_site(), encoding="utf-8")
    print(f"wrote {RENDERED.relative_to(ROOT)} from {TEMPLATE.relative_to(ROOT)}")
