"""A formula's error message in the reader's language.

The checker words its messages in English, with the names of the formula in them ("unknown field
'revnue'; did you mean 'revenue'?"). Each message is a few clauses joined by "; "; each clause of
a known shape is matched here and re-worded from the catalog with the same names filled in, so
the Chinese reader sees Chinese around the names they typed. A clause of a shape not listed stays
as the checker wrote it (``tests/web/test_formula_editor.py`` holds the common mistakes to
translating completely).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from closeloop.web.i18n import N_

#: the checker's words for types, inside clauses
_TYPE_WORDS = {
    "a number": N_("a number"),
    "a text": N_("a text"),
    "a date": N_("a date"),
    "a date-time": N_("a date-time"),
    "true/false": N_("true/false"),
    "NULL": "NULL",
    "number": N_("number"),
    "text": N_("text"),
    "date": N_("date"),
    "date-time": N_("date-time"),
}

#: (pattern of one clause, catalog text with the pattern's groups as %(name)s)
_CLAUSES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"the formula is empty"), N_("the formula is empty")),
    (re.compile(r"the formula ends too early"), N_("the formula ends too early")),
    (re.compile(r"this text has no closing quote"), N_("this text has no closing quote")),
    (re.compile(r"unexpected character (?P<what>.+)"), N_("unexpected character %(what)s")),
    (re.compile(r"unexpected the end of the formula"), N_("the formula ends too early")),
    (re.compile(r"unexpected the text (?P<what>.+)"), N_("unexpected text %(what)s")),
    (re.compile(r"unexpected (?P<what>.+)"), N_("unexpected %(what)s")),
    (
        re.compile(r"expected a value \(a number, a text, a field or a function\)"),
        N_("expected a value (a number, a text, a field or a function)"),
    ),
    (re.compile(r"expected ',' or '\)'"), N_("expected ',' or ')'")),
    (re.compile(r"expected '\)'"), N_("expected ')'")),
    (
        re.compile(r"expected an operator or the end of the formula"),
        N_("expected an operator or the end of the formula"),
    ),
    (
        re.compile(r"comparisons cannot be chained \(write a < b AND b < c\)"),
        N_("comparisons cannot be chained (write a < b AND b < c)"),
    ),
    (re.compile(r"unknown field (?P<name>'[^']*') of (?P<list>\w+)"), N_("unknown field %(name)s of %(list)s")),
    (re.compile(r"unknown field (?P<name>'[^']*')"), N_("unknown field %(name)s")),
    (re.compile(r"unknown function (?P<name>\w+)"), N_("unknown function %(name)s")),
    (
        re.compile(r"unknown list of related records (?P<name>'[^']*')"),
        N_("unknown list of related records %(name)s"),
    ),
    (re.compile(r"did you mean (?P<names>.+)\?"), N_("did you mean %(names)s?")),
    (
        re.compile(r"(?P<name>'[^']*') reads a list of related records"),
        N_("%(name)s is a list of related records"),
    ),
    (
        re.compile(r"use an aggregate such as (?P<first>\S+) or (?P<second>\S+)"),
        N_("use an aggregate such as %(first)s or %(second)s"),
    ),
    (re.compile(r"WHERE reads the related record's own fields"), N_("WHERE reads the related record's own fields")),
    (
        re.compile(r"(?P<name>\w+) takes (?P<wanted>.+) values?, not (?P<count>\d+)"),
        N_("%(name)s takes %(wanted)s values, not %(count)s"),
    ),
    (re.compile(r"cannot add (?P<b>[\w/-]+) to (?P<a>[\w/-]+)"), N_("cannot add %(b)s to %(a)s")),
    (re.compile(r"cannot subtract (?P<b>[\w/-]+) from (?P<a>[\w/-]+)"), N_("cannot subtract %(b)s from %(a)s")),
    (re.compile(r"cannot multiply (?P<a>[\w/-]+) by (?P<b>[\w/-]+)"), N_("cannot multiply %(a)s by %(b)s")),
    (re.compile(r"cannot divide (?P<a>[\w/-]+) by (?P<b>[\w/-]+)"), N_("cannot divide %(a)s by %(b)s")),
    (re.compile(r"use & to join texts"), N_("use & to join texts")),
    (
        re.compile(r"use DAYS_BETWEEN\(start, end\) for the days between two dates"),
        N_("use DAYS_BETWEEN(start, end) for the days between two dates"),
    ),
    (
        re.compile(r"(?P<op>'[^']+') compares values of one type: (?P<a>.+) and (?P<b>.+)"),
        N_("%(op)s compares values of one type, not %(a)s and %(b)s"),
    ),
    (
        re.compile(r"IF's two branches must be values of one type: (?P<a>.+) and (?P<b>.+)"),
        N_("IF's two branches must be of one type, not %(a)s and %(b)s"),
    ),
    (
        re.compile(r"(?P<name>\w+) (?:takes|compares) values of one type: (?P<a>.+) and (?P<b>.+)"),
        N_("%(name)s needs values of one type, not %(a)s and %(b)s"),
    ),
    (
        re.compile(r"IF's first value is the condition: true/false, not (?P<a>.+)"),
        N_("IF's first value is the condition (true/false), not %(a)s"),
    ),
    (
        re.compile(r"(?P<op>AND|OR) joins true/false values, not (?P<a>.+)"),
        N_("%(op)s joins true/false values, not %(a)s"),
    ),
    (re.compile(r"(?P<name>\w+) needs a number, not (?P<a>.+)"), N_("%(name)s needs a number, not %(a)s")),
    (
        re.compile(r"the formula is always empty \(NULL\)"),
        N_("the formula is always empty (NULL)"),
    ),
    (re.compile(r"give it a value"), N_("give it a value")),
    (
        re.compile(r"WHERE needs a condition \(true/false\), not (?P<a>.+)"),
        N_("WHERE needs a condition (true/false), not %(a)s"),
    ),
    (
        re.compile(r"(?P<name>\w+) adds up numbers"),
        N_("%(name)s adds up numbers"),
    ),
    (re.compile(r"(?P<field>[\w.]+) is (?P<a>a text|a date|a date-time|true/false)"), N_("%(field)s is %(a)s")),
]

#: between clauses
_JOINER = N_("; ")


def translate(message: str, gettext: Callable[[str], str]) -> str:
    """``message`` (the checker's English) clause by clause in the language of ``gettext``."""
    clauses = message.split("; ")
    translated = [_clause(clause, gettext) for clause in clauses]
    return gettext(_JOINER).join(translated)


def _clause(clause: str, gettext: Callable[[str], str]) -> str:
    for pattern, template in _CLAUSES:
        match = pattern.fullmatch(clause)
        if match is None:
            continue
        values = {name: _words(value, gettext) for name, value in match.groupdict().items()}
        return gettext(template) % values
    return clause


def _words(value: str, gettext: Callable[[str], str]) -> str:
    if value in _TYPE_WORDS:
        return gettext(_TYPE_WORDS[value])
    if value == "no":
        return "0"
    for english, text in (("or more", N_("or more")), (" to ", N_(" to ")), (" or ", N_(" or "))):
        value = value.replace(english, gettext(text))
    return value
