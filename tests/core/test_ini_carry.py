"""CliSiTef.ini carry-over: reading values the way the CliSiTef library does, rendering the
template with the endpoint's values, bytes kept exactly."""

from __future__ import annotations

import pytest

from flageemonitor.core.ini_carry import (
    CarriedKey,
    carry_over,
    decode_exact,
    encode_exact,
    find_value,
    replace_value,
)

KEYS = (CarriedKey("PinPadCompartilhado", "Porta"), CarriedKey("PinPad", "MensagemPadrao"))

TEMPLATE = """[Geral]
Versao=2
[PinPad]
Tipo=AUTO
Porta=AUTO_USB
MensagemPadrao=TEMPLATE MSG
[PinPadCompartilhado]
; Porta=COMENTADA
Porta=11
Habilitado=1
"""


@pytest.mark.parametrize(("text", "section", "key", "expected"), [
    ("[A]\nk=1\n", "A", "k", "1"),
    ("[A]\nk=a = b = c\n", "A", "k", "a = b = c"),  # further '=' kept
    ("[A]\nk=  spaced  \n", "A", "k", "  spaced  "),  # blanks kept
    ("[A]\nk=\n", "A", "k", ""),  # empty is a value
    ("[A]\n  k  =v\n", "A", "k", "v"),  # blanks around the key
    ("[a]\nK=v\n", "A", "k", "v"),  # names without regard to case
    ("  [ A ]  \nk=v\n", "A", "k", "v"),  # blanks around the header
    ("[A]\n#k=no\n;k=no\n  # k=no\nk=yes\n", "A", "k", "yes"),  # comments skipped
    ("[A]\nk=first\nk=second\n", "A", "k", "first"),
    ("[B]\nk=other\n[A]\nk=mine\n", "A", "k", "mine"),  # the section's, not the first in the file
    ("[A]\nx=1\n[B]\nk=other\n", "A", "k", None),  # another section's value is never taken
    ("k=flat\n[B]\nk=other\n", "A", "k", "flat"),  # no such section: before any header
    ("[B]\nk=other\n", "A", "k", None),
    ("[A]\nkey2=x\nkeyk=y\n", "A", "key", None),  # whole key names only
    ("[A]\r\nk=crlf\r\n", "A", "k", "crlf"),  # CRLF line endings
    ("[A]\nk=last line without newline", "A", "k", "last line without newline"),
    ("\ufeff[A]\nk=bom\n", "A", "k", "bom"),
    ("[A]\n;[B]\nk=still A\n", "A", "k", "still A"),  # a commented header is not a header
    ("", "A", "k", None),
])
def test_find_value(text: str, section: str, key: str, expected: str | None) -> None:
    assert find_value(text, section, key) == expected


def test_replace_value_keeps_the_key_spelling_the_line_ending_and_every_other_line() -> None:
    text = "[A]\r\n; k=comment\r\n  Key =old\r\nother=1\r\n[B]\r\nKey=b\r\n"
    assert replace_value(text, "a", "KEY", "new = value ") == (
        "[A]\r\n; k=comment\r\n  Key =new = value \r\nother=1\r\n[B]\r\nKey=b\r\n")
    assert replace_value(text, "C", "Key", "x") is None
    with pytest.raises(ValueError, match="one line"):
        replace_value(text, "A", "Key", "two\nlines")


def test_carry_over_takes_the_endpoint_values_and_keeps_the_rest_of_the_template() -> None:
    current = ("[PinPad]\nPorta=COM9\nMensagemPadrao=Bem vindo = 100%\n"
               "[PinPadCompartilhado]\n#Porta=99\nPorta=7\n")
    result = carry_over(TEMPLATE, current, KEYS)
    assert result.carried == {"PinPadCompartilhado.Porta": "7", "PinPad.MensagemPadrao": "Bem vindo = 100%"}
    assert result.text == TEMPLATE.replace("MensagemPadrao=TEMPLATE MSG", "MensagemPadrao=Bem vindo = 100%").replace(
        "\nPorta=11\n", "\nPorta=7\n")
    assert "Porta=AUTO_USB" in result.text  # [PinPad]'s own Porta is the template's
    assert result.notes() == []


def test_carry_over_keeps_the_template_value_for_what_the_endpoint_lacks() -> None:
    result = carry_over(TEMPLATE, "[PinPad]\nMensagemPadrao=LOJA 5\n", KEYS)
    assert result.carried == {"PinPad.MensagemPadrao": "LOJA 5"}
    assert result.template_values == {"PinPadCompartilhado.Porta": "11"}
    assert "Porta=11" in result.text
    assert result.notes() == ["PinPadCompartilhado.Porta not on the endpoint: template value kept"]


def test_carry_over_without_an_endpoint_file_renders_the_template_as_is() -> None:
    result = carry_over(TEMPLATE, None, KEYS)
    assert result.text == TEMPLATE
    assert set(result.template_values) == {"PinPadCompartilhado.Porta", "PinPad.MensagemPadrao"}


def test_a_key_missing_from_the_template_is_reported_never_invented() -> None:
    template = "[PinPad]\nTipo=AUTO\n"
    result = carry_over(template, "[PinPad]\nMensagemPadrao=X\n[PinPadCompartilhado]\nPorta=3\n", KEYS)
    assert result.text == template
    assert result.missing_in_template == ["PinPadCompartilhado.Porta", "PinPad.MensagemPadrao"]
    assert "PinPad.MensagemPadrao not in the template: not carried" in result.notes()


def test_carry_over_is_idempotent() -> None:
    current = "[PinPad]\nMensagemPadrao=A=B\n[PinPadCompartilhado]\nPorta=4\n"
    once = carry_over(TEMPLATE, current, KEYS).text
    assert carry_over(TEMPLATE, once, KEYS).text == once


def test_non_utf8_bytes_round_trip_exactly() -> None:
    template = b"[PinPad]\r\nMensagemPadrao=x\r\n"
    current = b"[PinPad]\r\nMensagemPadrao=Ol\xe1 caf\xe9 \xff\r\n"  # Latin-1, and a byte invalid anywhere
    result = carry_over(decode_exact(template), decode_exact(current), KEYS)
    assert encode_exact(result.text) == b"[PinPad]\r\nMensagemPadrao=Ol\xe1 caf\xe9 \xff\r\n"
    assert encode_exact(decode_exact(current)) == current
