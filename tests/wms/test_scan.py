"""Scan verification: GS1 labels parsed by biip, checked against material, lot and status."""

from __future__ import annotations

from datetime import date

import pytest

from wms import messages as m
from wms.port import BadScan, LotExpired, LotOnHold, UnknownLot, WrongLot, WrongMaterial

GS = "\x1d"
ASC_GTIN, MCC_GTIN = "07601234560013", "07601234560020"


def scan(wms, raw: str, material: str = "RM-ASC", expected: str = "") -> m.ScanResult:
    return wms.verify_scan(m.ScanRequest(raw=raw, material_code=material, expected_lot=expected))


def test_gs1_128_label_of_the_right_released_lot_passes(wms):
    result = scan(wms, f"]C101{ASC_GTIN}1728063010ASC-2601")
    assert (result.lot_number, result.expiry, result.lot_status) == (
        "ASC-2601", "2028-06-30", m.RELEASED)


def test_datamatrix_and_printed_text_forms_are_accepted(wms):
    assert scan(wms, f"]d201{ASC_GTIN}10ASC-2602{GS}17290331").lot_number == "ASC-2602"
    assert scan(wms, f"(01){ASC_GTIN}(17)290331(10)ASC-2602").lot_number == "ASC-2602"


def test_sscc_pallet_label_identifies_the_received_lot(wms):
    result = scan(wms, "]C100376012345000000010")
    assert (result.lot_number, result.sscc) == ("ASC-2601", "376012345000000010")
    with pytest.raises(BadScan, match="check digit"):
        scan(wms, "]C100376012345000000011")


def test_wrong_material_is_refused_naming_both_materials(wms):
    with pytest.raises(WrongMaterial, match=r"label is RM-MCC .* needs RM-ASC Ascorbic acid"):
        scan(wms, f"]C101{MCC_GTIN}10MCC-2601")


def test_gtin_with_wrong_check_digit_is_refused(wms):
    with pytest.raises(BadScan, match="check digit"):
        scan(wms, "]C1010760123456001410ASC-2601")


def test_wrong_lot_unknown_lot_and_contradicting_expiry_are_refused(wms):
    with pytest.raises(WrongLot, match="lot ASC-2601 was picked"):
        scan(wms, f"]C101{ASC_GTIN}10ASC-2602", expected="ASC-2601")
    with pytest.raises(UnknownLot):
        scan(wms, f"]C101{ASC_GTIN}10ASC-9999")
    with pytest.raises(BadScan, match="label says lot ASC-2601 expires 2029-06-30"):
        scan(wms, f"]C101{ASC_GTIN}1729063010ASC-2601")


def test_held_and_expired_lots_are_refused_at_the_scan(wms, calendar):
    with pytest.raises(LotOnHold):
        scan(wms, f"]C101{ASC_GTIN}10ASC-2603")
    with pytest.raises(LotExpired):
        scan(wms, f"]C101{ASC_GTIN}10ASC-2401")
    calendar.day = date(2030, 1, 1)
    with pytest.raises(LotExpired):
        scan(wms, f"]C101{ASC_GTIN}10ASC-2601")


def test_non_gs1_input_is_refused(wms):
    with pytest.raises(BadScan, match="not a GS1 label"):
        scan(wms, "hello")
    with pytest.raises(BadScan, match="empty"):
        scan(wms, "  ")
