"""``ffasim decode``: inputs, types, text and JSON output, one-line errors with exit 2."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from ffasim.cli import app

from .golden import MEM_SHARE_V1_0, MEM_SHARE_V1_1_GOLDEN, RXTX_12_44

runner = CliRunner()
GOLDEN_HEX = MEM_SHARE_V1_1_GOLDEN.hex()


def run(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, ["decode", *args], input=input)


def test_decode_hex_argument_prints_fields_with_meanings():
    r = run(GOLDEN_HEX)
    assert r.exit_code == 0, r.output
    assert "FF-A memory transaction descriptor, v1.1 layout (96 bytes)" in r.output
    assert re.search(
        r"^\s+2\s+2\s+attributes\s+0x002f\s+normal, write-back, inner shareable$", r.output, re.M
    )
    assert re.search(
        r"^\s+50\s+1\s+emad\[0\]\.permissions\s+0x02\s+RW, instruction access "
        r"unspecified$",
        r.output,
        re.M,
    )
    assert re.search(
        r"^\s+80\s+8\s+composite\.range\[0\]\.address\s+0x000000004010f000", r.output, re.M
    )
    assert "# type guessed as mem" in r.output


def test_decode_accepts_spaced_and_prefixed_hex():
    spaced = " ".join("0x" + MEM_SHARE_V1_1_GOLDEN[i : i + 4].hex() for i in range(0, 96, 4))
    r = run(*spaced.split(), "--type", "mem", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["length"] == 96


def test_decode_sample_without_argument_is_the_golden_vector():
    r = run("--sample", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["type"] == "mem" and out["length"] == 96 and out["guessed"] is False
    fields = {f["name"]: f for f in out["fields"]}
    assert fields["sender"] == {
        "offset": 0,
        "size": 2,
        "name": "sender",
        "value": 0x8005,
        "meaning": "SP 0x8005",
    }
    assert fields["handle"]["value"] == 0x1234567890ABCDEF
    assert fields["composite.range[0].address"]["value"] == 0x4010F000


def test_decode_named_sample_uses_its_type():
    r = run("--sample", "rxtx_seed")
    assert r.exit_code == 0, r.output
    assert "12-byte header (seed)" in r.output
    assert "not 8-byte aligned (Hafnium refuses)" in r.output


def test_decode_list_samples_names_the_golden_vector():
    r = run("--list-samples")
    assert r.exit_code == 0
    assert re.search(r"^mem_share_v1_1\s+FFA_MEM_SHARE", r.output, re.M)


def test_decode_every_bundled_sample_decodes():
    names = [line.split()[0] for line in run("--list-samples").output.splitlines()]
    assert len(names) >= 10
    for name in names:
        r = run("--sample", name, "--json")
        assert r.exit_code == 0, (name, r.output)


def test_decode_unknown_sample_is_exit_2():
    r = run("--sample", "nope")
    assert r.exit_code == 2
    assert r.output.startswith("error: no sample 'nope'; samples: ")


def test_decode_file_with_hex_text(tmp_path):
    f = tmp_path / "d.hex"
    f.write_text("# a comment\n# type: rxtx\n" + RXTX_12_44.hex() + "\n")
    r = run("--file", str(f), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["type"] == "rxtx"


def test_decode_file_with_raw_binary(tmp_path):
    f = tmp_path / "d.bin"
    f.write_bytes(MEM_SHARE_V1_0)
    r = run("--file", str(f), "--type", "mem-v1.0", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["type"] == "mem-v1.0"
    assert {f["name"]: f["value"] for f in out["fields"]}["emad_count"] == 1


def test_decode_stdin_hex():
    r = run("--type", "mem", input=GOLDEN_HEX + "\n")
    assert r.exit_code == 0, r.output
    assert "(96 bytes)" in r.output


def test_decode_missing_file_is_one_line_exit_2(tmp_path):
    r = run("--file", str(tmp_path / "missing.hex"))
    assert r.exit_code == 2
    assert re.fullmatch(r"error: cannot read .*missing\.hex: No such file or directory\n", r.output)


def test_decode_bad_hex_is_one_line_exit_2():
    r = run("05zz")
    assert r.exit_code == 2
    assert r.output == "error: not hex: 'z' at hex digit 2\n"
    r = run("050")
    assert r.output == "error: odd number of hex digits (3)\n"


def test_decode_invalid_descriptor_names_offset_and_rule():
    bad = bytearray(MEM_SHARE_V1_1_GOLDEN)
    bad[28] = 9  # EMAD count 9: the array would run past the 96 bytes
    r = run(bad.hex(), "--type", "mem")
    assert r.exit_code == 2
    assert r.output == (
        "error: mem: offset 28 (emad_count): 9 EMADs of 16 bytes at 48 overrun the 96-byte "
        "descriptor [INVALID_PARAMETERS]\n"
    )


def test_decode_invalid_descriptor_json_has_offset_and_code():
    bad = bytearray(MEM_SHARE_V1_1_GOLDEN)
    bad[50] = 0x03  # reserved data access
    r = run(bad.hex(), "--type", "mem", "--json")
    assert r.exit_code == 2
    first = r.output.splitlines()[0]
    out = json.loads(first)
    assert (out["offset"], out["field"], out["code"]) == (50, "permissions", -2)


def test_decode_unknown_type_is_exit_2():
    r = run(GOLDEN_HEX, "--type", "bogus")
    assert r.exit_code == 2
    assert r.output.startswith("error: unknown --type 'bogus'; choose one of: mem, ")


def test_decode_undecodable_bytes_without_type_is_exit_2():
    r = run("ff" * 3)
    assert r.exit_code == 2
    assert r.output == "error: 3 bytes decode as no known descriptor; name one with --type\n"


@pytest.mark.parametrize(
    ("sample", "type_name"),
    [
        ("mem_share_v1_0", "mem-v1.0"),
        ("mem_share_v1_2", "mem-v1.2"),
        ("rxtx_v1_1", "rxtx"),
        ("partinfo_v1_1", "partinfo"),
        ("partinfo_v1_0", "partinfo-v1.0"),
        ("relinquish", "relinquish"),
        ("msg_v1_1", "msg"),
        ("msg_v1_2", "msg-v1.2"),
        ("hyp_retrieve_req", "mem"),
    ],
)
def test_decode_guesses_the_type_of_each_sample(sample, type_name):
    raw = json.loads(run("--sample", sample, "--json").output)
    hexed = "".join(f"{b:02x}" for b in _bytes_of(raw))
    r = run(hexed, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["type"] == type_name


def _bytes_of(dump: dict) -> bytes:
    """Rebuild the descriptor from a JSON dump (fields are little-endian, in order)."""
    out = bytearray(dump["length"])
    for f in dump["fields"]:
        value = f["value"]
        if f["name"].endswith("payload"):
            continue
        if isinstance(value, int):
            out[f["offset"] : f["offset"] + f["size"]] = value.to_bytes(f["size"], "little")
        elif f["name"].endswith("uuid"):
            import uuid

            out[f["offset"] : f["offset"] + 16] = uuid.UUID(value).bytes
        else:
            out[f["offset"] : f["offset"] + f["size"]] = bytes.fromhex(value)
    return bytes(out)


def test_decode_empty_stdin_is_exit_2():
    r = run(input="")
    assert r.exit_code == 2
    assert r.output == "error: no input: the descriptor is empty\n"


def test_decode_hex_and_file_together_is_exit_2(tmp_path):
    f = tmp_path / "d.hex"
    f.write_text(GOLDEN_HEX)
    r = run("00", "--file", str(f))
    assert r.exit_code == 2
    assert r.output == "error: give either --file or hex arguments, not both\n"


def test_decode_type_overrides_the_sample_type():
    r = run("--sample", "rxtx_v1_1", "--type", "mem")
    assert r.exit_code == 2
    assert (
        r.output
        == "error: mem: offset 36 (reserved): reserved field is not zero [INVALID_PARAMETERS]\n"
    )


# The golden vector as `xxd` prints it, and 64 zero bytes before it as `hexdump -C` does (the
# "*" line stands for the lines equal to the one above).
GOLDEN_XXD = """\
00000000: 0580 2f00 0000 0000 efcd ab90 7856 3412  ../.........xV4.
00000010: efbe 0000 adde 0000 1000 0000 0100 0000  ................
00000020: 3000 0000 0000 0000 0000 0000 0000 0000  0...............
00000030: 0380 0200 4000 0000 0000 0000 0000 0000  ....@...........
00000040: 0100 0000 0100 0000 0000 0000 0000 0000  ................
00000050: 00f0 1040 0000 0000 0100 0000 0000 0000  ...@............
"""
PADDED_HEXDUMP = """\
00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
*
00000040  05 80 2f 00 00 00 00 00  ef cd ab 90 78 56 34 12  |../.........xV4.|
00000050  ef be 00 00 ad de 00 00  10 00 00 00 01 00 00 00  |................|
00000060  30 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |0...............|
00000070  03 80 02 00 40 00 00 00  00 00 00 00 00 00 00 00  |....@...........|
00000080  01 00 00 00 01 00 00 00  00 00 00 00 00 00 00 00  |................|
00000090  00 f0 10 40 00 00 00 00  01 00 00 00 00 00 00 00  |...@............|
000000a0
"""


def test_decode_reads_xxd_output_from_stdin_an_argument_or_a_file(tmp_path):
    f = tmp_path / "golden.xxd"
    f.write_text(GOLDEN_XXD)
    for args, stdin in (((), GOLDEN_XXD), ((GOLDEN_XXD,), None), (("--file", str(f)), None)):
        r = run(*args, "--json", input=stdin)
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert (out["type"], out["length"]) == ("mem", 96)
        assert _bytes_of(out) == MEM_SHARE_V1_1_GOLDEN


def test_decode_reads_hexdump_output_with_repeated_lines():
    from ffasim.cli._decode import parse_hex

    assert parse_hex(PADDED_HEXDUMP) == bytes(64) + MEM_SHARE_V1_1_GOLDEN
    assert parse_hex(PADDED_HEXDUMP.replace("000000a0\n", "")) == parse_hex(PADDED_HEXDUMP)


def test_decode_dump_whose_offsets_do_not_follow_is_exit_2():
    broken = GOLDEN_XXD.replace("00000020:", "00000030:", 1)
    r = run(input=broken)
    assert r.exit_code == 2
    assert r.output == "error: line 3 of the dump is at offset 0x30, after 0x20 bytes\n"


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (
            80,
            "80 bytes look like mem cut short: offset 68 (address_range_count): 1 constituents "
            "at 80 overrun the 80-byte descriptor [INVALID_PARAMETERS]",
        ),
        (
            60,
            "60 bytes look like mem cut short: offset 28 (emad_count): 1 EMADs of 16 bytes at "
            "48 overrun the 60-byte descriptor [INVALID_PARAMETERS]",
        ),
    ],
)
def test_decode_truncated_input_without_type_names_the_rule_the_cut_breaks(cut, message):
    r = run(MEM_SHARE_V1_1_GOLDEN[:cut].hex())
    assert r.exit_code == 2
    assert r.output == f"error: {message}; name another type with --type\n"
    r = run(MEM_SHARE_V1_1_GOLDEN[:cut].hex(), "--json")
    out = json.loads(r.output.splitlines()[0])
    assert out["type"] == "mem" and out["code"] == -2
