"""Splitting trace header values (Received, Authentication-Results, Received-SPF) into words.

These headers share one lexical shape: words separated by white space, `;` between groups,
"quoted strings", and (comments), which nest. The email package has no parser for them, so
this small tokenizer does only that much and leaves meaning to `trace`.
"""

from __future__ import annotations

from dataclasses import dataclass

WORD = "word"
COMMENT = "comment"
SEMICOLON = ";"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(value: str) -> list[Token]:
    """Words (quoted strings unquoted), comments (without the outer parentheses) and `;`."""
    tokens: list[Token] = []
    word: list[str] = []
    position = 0
    while position < len(value):
        char = value[position]
        if char == "(":
            _flush(word, tokens)
            comment, position = _read_comment(value, position)
            tokens.append(Token(COMMENT, comment))
            continue
        if char == '"':
            quoted, position = _read_quoted(value, position)
            word.append(quoted)
            continue
        if char == ";":
            _flush(word, tokens)
            tokens.append(Token(SEMICOLON, ";"))
        elif char.isspace():
            _flush(word, tokens)
        else:
            word.append(char)
        position += 1
    _flush(word, tokens)
    return tokens


def groups(tokens: list[Token]) -> list[list[Token]]:
    """The tokens between semicolons."""
    result: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind == SEMICOLON:
            result.append([])
        else:
            result[-1].append(token)
    return result


def _flush(word: list[str], tokens: list[Token]) -> None:
    if word:
        tokens.append(Token(WORD, "".join(word)))
        word.clear()


def _read_comment(value: str, start: int) -> tuple[str, int]:
    depth, position = 0, start
    while position < len(value):
        char = value[position]
        if char == "\\":
            position += 2
            continue
        depth += (char == "(") - (char == ")")
        position += 1
        if depth == 0:
            return value[start + 1:position - 1].strip(), position
    return value[start + 1:].strip(), position


def _read_quoted(value: str, start: int) -> tuple[str, int]:
    chars, position = [], start + 1
    while position < len(value):
        char = value[position]
        if char == "\\" and position + 1 < len(value):
            chars.append(value[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    return "".join(chars), position
