"""The wheel that `pip install .` (and the Docker build) makes from this checkout: it carries
every package, the templates, the static files and the compiled catalogues, and an app
imported from it alone renders the login page."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.dockerfile import REPO
from tests.deploy.wheel import build_wheel

# Building the wheel in an isolated environment takes 4-10 s (setuptools is installed afresh).
pytestmark = pytest.mark.slow

RENDER_LOGIN = """
import json, sys
sys.path.insert(0, sys.argv[1])
import app
from app import create_app
application = create_app({"TESTING": True, "POCHTA_DATA_DIR": sys.argv[2]})
client = application.test_client()
login = client.get("/login")
css = client.get("/static/css/pochta.css")
print(json.dumps({
    "package": app.__file__,
    "templates": application.jinja_loader.searchpath,
    "login_status": login.status_code,
    "login": login.get_data(as_text=True),
    "css_status": css.status_code,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_wheel_carries_every_package_of_app(wheel: Path):
    names = _names(wheel)
    packages = sorted(init.parent for init in (REPO / "app").rglob("__init__.py"))
    missing = [
        str(p.relative_to(REPO)) for p in packages
        if f"{p.relative_to(REPO).as_posix()}/__init__.py" not in names
    ]
    assert not missing, f"add them to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_wheel_carries_the_templates_and_static_files_inside_the_package(wheel: Path):
    names = _names(wheel)
    for folder in ("templates", "static"):
        expected = {f"app/{p.relative_to(REPO).as_posix()}" for p in _files(REPO / folder)}
        assert expected, f"{folder}/ is empty"
        assert expected <= names, sorted(expected - names)


def test_wheel_carries_a_compiled_catalogue_for_each_translation(wheel: Path):
    catalogues = sorted((REPO / "app").glob("translations/*/LC_MESSAGES/*.po"))
    if not catalogues:
        pytest.skip("no message catalogues (app/translations/*/LC_MESSAGES/*.po) yet")
    names = _names(wheel)
    expected = {p.relative_to(REPO).with_suffix(".mo").as_posix() for p in catalogues}
    assert expected <= names, sorted(expected - names)


def test_an_app_from_the_wheel_alone_renders_the_login_page(wheel: Path, tmp_path: Path):
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    result = subprocess.run(
        [sys.executable, "-c", RENDER_LOGIN, str(installed), str(tmp_path / "data")],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert Path(seen["package"]).is_relative_to(installed), "imported the checkout instead"
    assert all(Path(p).is_relative_to(installed) for p in seen["templates"])
    assert seen["login_status"] == 200
    assert 'action="/login"' in seen["login"] and 'name="password"' in seen["login"]
    assert seen["css_status"] == 200
