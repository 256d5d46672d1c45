from __future__ import annotations

from app.messages.tracetokens import COMMENT, SEMICOLON, WORD, Token, groups, tokenize


def test_words_comments_and_semicolons():
    assert tokenize("from a (b [1.2.3.4]) by c; date") == [
        Token(WORD, "from"), Token(WORD, "a"), Token(COMMENT, "b [1.2.3.4]"),
        Token(WORD, "by"), Token(WORD, "c"), Token(SEMICOLON, ";"), Token(WORD, "date")]


def test_comments_nest_and_escape():
    assert tokenize(r"(outer (inner) \) still) next") == [
        Token(COMMENT, r"outer (inner) \) still"), Token(WORD, "next")]


def test_quoted_strings_are_one_word_without_quotes():
    assert tokenize('reason="policy; says (no)" x') == [
        Token(WORD, "reason=policy; says (no)"), Token(WORD, "x")]


def test_unterminated_comment_and_quote_end_at_the_end():
    assert tokenize("a (open") == [Token(WORD, "a"), Token(COMMENT, "open")]
    assert tokenize('a "open') == [Token(WORD, "a"), Token(WORD, "open")]


def test_groups_split_at_semicolons():
    assert groups(tokenize("a; b c;")) == [[Token(WORD, "a")],
                                          [Token(WORD, "b"), Token(WORD, "c")], []]
