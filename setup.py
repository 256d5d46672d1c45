"""The one build step pyproject.toml cannot express: compiling the message catalogues.

Every app/translations/<language>/LC_MESSAGES/messages.po is compiled to messages.mo before
build_py collects the package data, so `pip install .`, `pip wheel .`, `python -m build`
(the sdist carries the .po files, see MANIFEST.in) and `pip install -e .` (build_py runs in
editable mode too, and the .mo lands in the source tree the install points to) all have
them. The .mo files are never committed.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithCatalogues(build_py):
    """build_py that compiles the catalogues first."""

    def run(self) -> None:
        # By path: the package itself cannot be imported before its dependencies exist.
        catalogues = runpy.run_path(str(HERE / "app" / "web" / "catalogues.py"))
        for mo in catalogues["compile_all"](HERE / "app" / "translations"):
            print(f"compiled {mo.relative_to(HERE)}")
        self.__dict__.pop("data_files", None)  # collect the package data again, .mo included
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogues})
