import pytest

from ocr_service.identify import identify


@pytest.mark.parametrize(
    ("scanned", "kind", "value"),
    [
        (
            "]C1010690123456789210LOT1\x1d17270131\r\n",
            "gs1",
            "(01)06901234567892(10)LOT1(17)270131",
        ),
        ("010690123456789210LOT1<GS>17270131", "gs1", "(01)06901234567892(10)LOT1(17)270131"),
        ("010690123456789210LOT1^]17270131", "gs1", "(01)06901234567892(10)LOT1(17)270131"),
        ("(01)06901234567892(17)270131", "gs1", "(01)06901234567892(17)270131"),
        ("010690123456789217270131", "gs1", "(01)06901234567892(17)270131"),
        # No AIM prefix and no GS before the last, variable-length field:
        ("010690123456789210LOT-A", "gs1", "(01)06901234567892(10)LOT-A"),
        ("0106901234567891" + "10LOT-A", "text", "0106901234567891" + "10LOT-A"),  # bad check
        ("6901234567892", "gtin", "06901234567892"),
        ("]E06901234567892", "gtin", "06901234567892"),
        ("106141411234567897", "sscc", "106141411234567897"),
        ("00106141411234567897", "sscc", "106141411234567897"),
        ("CSQU 305438 3", "container", "CSQU3054383"),
        ("81234567890123456789", "drug_code", "81234567890123456789"),
        ("A-01-02", "text", "A-01-02"),
        ("6901234567891", "text", "6901234567891"),  # bad check digit: just text
        ("]C1garbage", "text", "garbage"),
    ],
)
def test_identify_wedge_scans(scanned, kind, value):
    found = identify(scanned)
    assert (found.kind, found.value) == (kind, value)
