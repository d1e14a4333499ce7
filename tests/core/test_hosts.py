"""Host naming and the selection filters every inventory applies."""

from __future__ import annotations

import pytest

from flageemonitor.core.hosts import Host, HostFilter, parse_host_name, technical_name

FLEET = [
    Host.build("REDE1-LOJA001-PDV201", "127.0.0.2"),
    Host.build("REDE1-LOJA001-PDV202", "127.0.0.3"),
    Host.build("REDE1-LOJA002-SELF301", "127.0.0.4"),
    Host.build("REDE1-LOJA002-CONCENTRADOR", "127.0.0.5"),
    Host.build("REDE2-LOJA001-PDV201", "127.0.0.6"),
]


def names(hosts: list[Host]) -> list[str]:
    return [h.name for h in hosts]


def test_name_parsing() -> None:
    parsed = parse_host_name("MLAR-LOJA045-PDV213")
    assert (parsed.rede, parsed.loja, parsed.endpoint_type, parsed.code) == ("MLAR", 45, "PDV", "213")
    parsed = parse_host_name("SUPER-X-LOJA002-CONCENTRADOR")
    assert (parsed.rede, parsed.loja, parsed.endpoint_type, parsed.code) == ("SUPER-X", 2, "CONCENTRADOR", None)
    assert parse_host_name("gateway").rede is None


def test_technical_name_pads_loja_and_numeric_codes() -> None:
    assert technical_name("MLAR", 45, 213) == "MLAR-LOJA045-PDV213"
    assert technical_name("MLAR", 7, "5", "self") == "MLAR-LOJA007-SELF005"


def test_tag_sets_the_endpoint_type() -> None:
    assert Host.build("box-17", "10.0.0.1", tags={"tipo": "self"}).endpoint_type == "SELF"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (HostFilter(rede="rede1"), ["REDE1-LOJA001-PDV201", "REDE1-LOJA001-PDV202", "REDE1-LOJA002-CONCENTRADOR",
                                    "REDE1-LOJA002-SELF301"]),
        (HostFilter(rede="REDE1", loja="LOJA002"), ["REDE1-LOJA002-CONCENTRADOR", "REDE1-LOJA002-SELF301"]),
        (HostFilter(rede="REDE1", loja="1"), ["REDE1-LOJA001-PDV201", "REDE1-LOJA001-PDV202"]),
        (HostFilter(pdv="PDV201"), ["REDE1-LOJA001-PDV201", "REDE2-LOJA001-PDV201"]),
        (HostFilter(pdv="201", rede="REDE2"), ["REDE2-LOJA001-PDV201"]),
        (HostFilter(pdv_ip=("127.0.0.3", "127.0.0.4")), ["REDE1-LOJA001-PDV202", "REDE1-LOJA002-SELF301"]),
        (HostFilter(host_glob="*-self*"), ["REDE1-LOJA002-SELF301"]),
        (HostFilter(rede="REDE1", limit=2), ["REDE1-LOJA001-PDV201", "REDE1-LOJA001-PDV202"]),
        (HostFilter(rede="REDE3"), []),
    ],
)
def test_each_filter_is_applied(flt: HostFilter, expected: list[str]) -> None:
    assert names(flt.apply(FLEET)) == expected


def test_tag_filter() -> None:
    hosts = [Host.build("A-LOJA001-PDV1", "1.1.1.1", tags={"zona": "norte"}), Host.build("A-LOJA001-PDV2", "1.1.1.2")]
    assert names(HostFilter(tags={"zona": "norte"}).apply(hosts)) == ["A-LOJA001-PDV1"]


def test_bad_loja_value_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="--loja"):
        HostFilter(loja="store-one").apply(FLEET)


def test_password_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(Host.build("A-LOJA001-PDV1", "1.1.1.1", password="s3cret"))
