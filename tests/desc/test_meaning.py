"""Human readings of descriptor fields, as ``ffasim decode`` prints them."""

from __future__ import annotations

import pytest

from ffasim.desc.meaning import (
    describe_attributes,
    describe_emad_flags,
    describe_endpoint,
    describe_mem_flags,
    describe_partition_properties,
    describe_permissions,
    describe_relinquish_flags,
)


@pytest.mark.parametrize(
    ("attr", "text"),
    [
        (0x2F, "normal, write-back, inner shareable"),
        (0x26, "normal, non-cacheable, outer shareable"),
        (0x6F, "normal, write-back, inner shareable, NS"),
        (0x10, "device, nGnRnE"),
        (0x1C, "device, GRE"),
        (0x00, "type not specified"),
        (0x03, "type not specified, bits [3:0] = 0x3"),
        (0x30, "reserved memory type (0b11)"),
        (0x22, "normal, reserved cacheability (0b00), outer shareable"),
        (0x2F | 0x100, "normal, write-back, inner shareable, MBZ bits 0x100 set"),
    ],
)
def test_describe_attributes(attr, text):
    assert describe_attributes(attr) == text


@pytest.mark.parametrize(
    ("perm", "text"),
    [
        (0x02, "RW, instruction access unspecified"),
        (0x01, "RO, instruction access unspecified"),
        (0x06, "RW, NX"),
        (0x09, "RO, X"),
        (0x00, "data access unspecified, instruction access unspecified"),
        (0x03, "reserved data access (0b11), instruction access unspecified"),
        (0x12, "RW, instruction access unspecified, reserved bits 0x10 set"),
    ],
)
def test_describe_permissions(perm, text):
    assert describe_permissions(perm) == text


def test_describe_mem_flags():
    assert describe_mem_flags(0) == "none"
    assert describe_mem_flags(0x3) == "zero memory, time slicing"
    assert describe_mem_flags(0x8) == "transaction type share"
    assert describe_mem_flags(0x18 | 0x4) == "zero after relinquish, transaction type donate"
    assert describe_mem_flags(0x200 | (3 << 5)) == "alignment hint 3 (valid)"
    assert describe_mem_flags(0x400) == "bypass multiple-borrower check"
    assert describe_mem_flags(1 << 31) == "MBZ bits 0x80000000 set"


def test_describe_emad_and_relinquish_flags():
    assert describe_emad_flags(0) == "none"
    assert describe_emad_flags(1) == "non-retrieval borrower"
    assert describe_emad_flags(3) == "non-retrieval borrower, MBZ bits 0x02 set"
    assert describe_relinquish_flags(1) == "zero memory after relinquish"
    assert describe_relinquish_flags(6) == "time slicing, MBZ bits 0x4 set"


def test_describe_partition_properties():
    assert describe_partition_properties(0x1C3) == (
        "direct request receive, direct request send, VM created messages, "
        "VM destroyed messages, AArch64"
    )
    assert describe_partition_properties(0) == "none"
    assert describe_partition_properties(0x20) == "dependent peripheral"
    assert describe_partition_properties(1 << 12) == "bits 0x1000 beyond v1.2"


def test_describe_endpoint():
    assert describe_endpoint(0) == "hypervisor"
    assert describe_endpoint(0x8001) == "SP 0x8001"
    assert describe_endpoint(3) == "VM 3 (domid 2)"
    assert describe_endpoint(0xFFFF) == "SPMD"
