"""axe-core, the accessibility engine, fetched from the npm registry and run in a page.

No node or npm is needed: the package's metadata comes from the registry over HTTPS, the
tarball is checked against the registry's sha512 integrity value, and `package/axe.min.js`
is kept in `.cache/axe-core-<version>/` at the top of the checkout (git-ignored), so the
download happens once per machine. The script is evaluated through the DevTools protocol,
which the app's Content-Security-Policy (no inline scripts) does not apply to.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

AXE_VERSION = "4.10.3"
REGISTRY = "https://registry.npmjs.org"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / f"axe-core-{AXE_VERSION}"
TAGS = ("wcag2a", "wcag2aa", "best-practice")
BLOCKING_IMPACTS = ("serious", "critical")


class AxeUnavailable(Exception):
    """axe-core could not be fetched or failed its integrity check."""


def _get(url: str, timeout: float = 30) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise AxeUnavailable(f"unexpected integrity algorithm {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")
    if actual != expected:
        raise AxeUnavailable(f"axe-core {AXE_VERSION} tarball fails its integrity check")


def download_axe(target: Path = CACHE_DIR) -> Path:
    """Fetch axe-core's tarball from the registry, verify it, keep axe.min.js; its path."""
    try:
        meta = json.loads(_get(f"{REGISTRY}/axe-core/{AXE_VERSION}"))
        dist = meta["dist"]
        tarball = _get(dist["tarball"], timeout=120)
    except (OSError, ValueError, KeyError) as exc:
        raise AxeUnavailable(f"cannot fetch axe-core {AXE_VERSION} from {REGISTRY}: {exc}") from exc
    _check_integrity(tarball, dist["integrity"])
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile("package/axe.min.js")
        if member is None:
            raise AxeUnavailable("the axe-core tarball holds no package/axe.min.js")
        source = member.read()
    target.mkdir(parents=True, exist_ok=True)
    # Like .pytest_cache: the cache keeps itself out of git, whatever .gitignore says.
    (target.parent / ".gitignore").write_text("# created by tests/browser/axe.py\n*\n")
    path = target / "axe.min.js"
    partial = path.with_suffix(".part")
    partial.write_bytes(source)
    partial.replace(path)  # never a half-written script left behind
    return path


def axe_source() -> str:
    """The script, from the cache or else from the registry."""
    path = CACHE_DIR / "axe.min.js"
    if not path.is_file():
        path = download_axe()
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        where = ", ".join(self.targets[:5])
        return f"[{self.impact}] {self.rule}: {self.help} at {where}"


def run_axe(page: Page, source: str) -> list[Violation]:
    """Run axe on the page as it is now (tags wcag2a, wcag2aa, best-practice).

    The page must allow scripts: in a document whose policy forbids them (the CSP sandbox of
    a message body) axe never finishes; load such a document's HTML into a blank page.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return r.violations.map(v => ({
                rule: v.id, impact: v.impact || "unknown", help: v.help,
                targets: v.nodes.map(n => n.target.join(" ")),
            }));
        }""",
        list(TAGS),
    )
    return [
        Violation(v["rule"], v["impact"], v["help"], tuple(v["targets"])) for v in result
    ]


def blocking(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.impact in BLOCKING_IMPACTS]
