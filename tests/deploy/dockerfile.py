"""Just enough of a Dockerfile reader for the deploy tests: the final stage's ENV, CMD and
HEALTHCHECK, read from the real file so the tests break when the image drifts."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for args in self.all("ENV"):
            words = shlex.split(args)
            if "=" in words[0]:
                env.update(word.split("=", 1) for word in words)
            else:  # the legacy form, ENV NAME value
                env[words[0]] = args.split(None, 1)[1].strip()
        return env

    @property
    def command(self) -> list[str]:
        """ENTRYPOINT + CMD, as the container would run them (exec form only)."""
        return [*_exec_form(self.last("ENTRYPOINT")), *_exec_form(self.last("CMD"))]

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's options and its command (exec form)."""
        args = self.last("HEALTHCHECK")
        assert args, "the image has no HEALTHCHECK"
        match = re.fullmatch(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(.*)", args, re.DOTALL)
        assert match, f"HEALTHCHECK {args!r}"
        options = dict(re.findall(r"--([\w-]+)=(\S+)", match.group(1)))
        return options, _exec_form(match.group(2))


def _exec_form(args: str | None) -> list[str]:
    if args is None:
        return []
    assert args.startswith("["), f"not in exec form (a shell would be PID 1): {args!r}"
    return json.loads(args)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs: comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    pairs = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    args: dict[str, str] = {}
    result: list[Stage] = []
    for keyword, rest in instructions(path.read_text(encoding="utf-8")):
        if keyword == "ARG" and not result:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), rest.split()[0])
            result.append(Stage(image))
        elif result:
            result[-1].instructions.append((keyword, rest))
    return result


def final_stage(path: Path = DOCKERFILE) -> Stage:
    return stages(path)[-1]
