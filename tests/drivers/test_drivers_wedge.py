"""drivers/keymap.py and the wedge's framing: real evdev events in, text and scans out."""

from __future__ import annotations

import itertools

import pytest
from evdev import InputEvent, ecodes

from agent.clock import Clock, Uuid7
from agent.identify import identify
from drivers.base import Found, ReadFactory
from drivers.framing import Scan
from drivers.keymap import KeyDecoder, Layout, LayoutError
from drivers.wedge import ScanAssembler, WedgeScanner, WedgeSettings, describe

e = ecodes
SHIFT, CTRL, ALT, ALTGR = e.KEY_LEFTSHIFT, e.KEY_LEFTCTRL, e.KEY_LEFTALT, e.KEY_RIGHTALT
LAYOUTS: dict[str, Layout] = {}


def layout(name: str) -> Layout:
    if name not in LAYOUTS:  # compiling takes a few ms; share as the driver does
        LAYOUTS[name] = Layout(name)
    return LAYOUTS[name]


class Keys:
    """Key events as a USB keyboard sends them: MSC_SCAN, the key, SYN_REPORT; 1 ms apart."""

    def __init__(self, t_us: int = 1_780_000_000_000_000) -> None:
        self.t_us = t_us
        self.events: list[InputEvent] = []

    def _ev(self, type_: int, code: int, value: int) -> None:
        self.events.append(InputEvent(self.t_us // 10**6, self.t_us % 10**6, type_, code, value))

    def key(self, code: int, value: int) -> Keys:
        self._ev(e.EV_MSC, e.MSC_SCAN, 0x70000 + code)
        self._ev(e.EV_KEY, code, value)
        self._ev(e.EV_SYN, e.SYN_REPORT, 0)
        self.t_us += 1000
        return self

    def tap(self, code: int, *mods: int) -> Keys:
        for m in mods:
            self.key(m, 1)
        self.key(code, 1).key(code, 0)
        for m in reversed(mods):
            self.key(m, 0)
        return self

    def taps(self, *codes: int) -> Keys:
        for code in codes:
            self.tap(code)
        return self

    def gap(self, ms: int) -> Keys:
        self.t_us += ms * 1000
        return self


DIGITS = {str(i): getattr(e, f"KEY_{i}") for i in range(10)}
KP = {str(i): getattr(e, f"KEY_KP{i}") for i in range(10)}


def typed(decoder: KeyDecoder, keys: Keys) -> list[str | None]:
    """What each key event typed, leaving out what types nothing by design."""
    out = [decoder.key(ev.code, ev.value) for ev in keys.events if ev.type == e.EV_KEY]
    return [t for t in out if t != ""]


def text(name: str, keys: Keys) -> str:
    out = typed(layout(name).decoder(), keys)
    assert None not in out, out
    return "".join(t for t in out if t)


# ---- keymap: layouts -------------------------------------------------------------------


def test_us_letters_shift_digits_and_punctuation() -> None:
    keys = Keys().tap(e.KEY_A, SHIFT).taps(e.KEY_B, e.KEY_MINUS, e.KEY_1).tap(e.KEY_2, SHIFT)
    keys.tap(e.KEY_APOSTROPHE, SHIFT).tap(e.KEY_3, e.KEY_RIGHTSHIFT)
    assert text("us", keys) == 'Ab-1@"#'


def test_de_swaps_y_z_and_moves_punctuation() -> None:
    keys = Keys().taps(e.KEY_Y, e.KEY_Z, e.KEY_MINUS).tap(e.KEY_7, SHIFT).tap(e.KEY_MINUS, SHIFT)
    keys.tap(e.KEY_Q, ALTGR).tap(e.KEY_9, ALTGR).tap(e.KEY_3, SHIFT)
    assert text("de", keys) == "zyß/?@]§"


def test_fr_digits_need_shift_and_letters_move() -> None:
    gtin = "09506000134352"
    keys = Keys()
    for d in gtin:
        keys.tap(DIGITS[d], SHIFT)
    assert text("fr", keys) == gtin
    unshifted = Keys().taps(e.KEY_1, e.KEY_2, e.KEY_Q, e.KEY_A, e.KEY_SEMICOLON)
    assert text("fr", unshifted) == "&éaqm"
    assert text("fr", Keys().tap(e.KEY_0, ALTGR)) == "@"


def test_gb_swaps_at_and_quote_and_has_its_own_hash_key() -> None:
    keys = Keys().tap(e.KEY_2, SHIFT).tap(e.KEY_APOSTROPHE, SHIFT).tap(e.KEY_BACKSLASH)
    keys.tap(e.KEY_3, SHIFT)
    assert text("gb", keys) == '"@#£'
    assert text("us", Keys().tap(e.KEY_2, SHIFT).tap(e.KEY_APOSTROPHE, SHIFT)) == '@"'


def test_caps_lock_capitalises_letters_and_shift_undoes_it() -> None:
    keys = Keys().tap(e.KEY_CAPSLOCK).tap(e.KEY_A).tap(e.KEY_B, SHIFT).tap(e.KEY_1)
    keys.tap(e.KEY_CAPSLOCK).tap(e.KEY_C)
    assert text("us", keys) == "Ab1c"


@pytest.mark.parametrize("name", ["us", "de", "fr", "gb"])
def test_keypad_digits_are_digits_even_after_a_numlock_press(name: str) -> None:
    keys = Keys()
    for d in "0123456789":
        keys.tap(KP[d])
    keys.tap(e.KEY_NUMLOCK).taps(KP["4"], KP["2"])
    assert text(name, keys) == "012345678942"


@pytest.mark.parametrize("name", ["us", "de", "fr", "gb"])
def test_ctrl_right_brace_is_gs_on_every_layout(name: str) -> None:
    assert text(name, Keys().tap(e.KEY_RIGHTBRACE, CTRL)) == "\x1d"
    assert text(name, Keys().tap(e.KEY_RIGHTBRACE, e.KEY_RIGHTCTRL)) == "\x1d"


def test_ctrl_letters_and_us_punctuation_give_control_codes() -> None:
    keys = Keys().tap(e.KEY_D, CTRL).tap(e.KEY_6, CTRL, SHIFT).tap(e.KEY_BACKSLASH, CTRL)
    assert text("us", keys) == "\x04\x1e\x1c"
    # On de the US ^ key position is 6 too: RS for ISO 15434 data.
    assert text("de", Keys().tap(e.KEY_6, CTRL)) == "\x1e"


def test_keys_without_a_character_are_reported_not_typed() -> None:
    decoder = layout("us").decoder()
    # Ctrl+1 has no control code: typing "1" would change the data silently.
    assert typed(decoder, Keys().tap(e.KEY_1, CTRL).tap(e.KEY_F5).tap(e.KEY_UP)) == [None] * 3
    assert typed(decoder, Keys().tap(e.KEY_1)) == ["1"]  # and the state is clean after


def test_auto_repeat_types_nothing() -> None:
    decoder = layout("us").decoder()
    keys = Keys().key(e.KEY_A, 1).key(e.KEY_A, 2).key(e.KEY_A, 2).key(e.KEY_A, 0)
    assert typed(decoder, keys) == ["a"]


def test_alt_keypad_codes() -> None:
    def alt(*digits: str) -> Keys:
        keys = Keys().key(ALT, 1)
        for d in digits:
            keys.tap(KP[d])
        return keys.key(ALT, 0)

    assert text("us", alt("0", "0", "2", "9")) == "\x1d"  # GS
    assert text("de", alt("0", "1", "9", "6")) == "Ä"  # Windows-1252 with a leading 0
    assert text("us", alt("1", "4", "2")) == "Ä"  # code page 437 without
    assert typed(layout("us").decoder(), alt("0", "1", "4", "1")) == [None]  # no cp1252 char


def test_ctrl_left_alt_is_altgr_where_the_layout_has_one() -> None:
    # Scanners set up for Windows hosts send AltGr as Ctrl + left Alt.
    def windows(code: int, *more: int) -> Keys:
        return Keys().tap(code, CTRL, ALT, *more)

    assert text("de", windows(e.KEY_Q)) == "@"
    assert text("de", windows(e.KEY_E)) == "€"
    assert text("de", windows(e.KEY_7).tap(e.KEY_0, CTRL, ALT)) == "{}"
    assert text("fr", windows(e.KEY_0)) == "@"
    assert text("gb", windows(e.KEY_Q)) == "@"
    # ...the same characters as the real AltGr key gives
    for name, code in (("de", e.KEY_Q), ("de", e.KEY_8), ("fr", e.KEY_0), ("gb", e.KEY_4)):
        assert text(name, windows(code)) == text(name, Keys().tap(code, ALTGR))
    # and in a scan, beside the GS that Ctrl alone gives
    keys = Keys().taps(e.KEY_A).tap(e.KEY_Q, CTRL, ALT).tap(e.KEY_RIGHTBRACE, CTRL)
    assert text("de", keys) == "a@\x1d"


def test_ctrl_alt_stays_control_where_the_layout_has_no_altgr_there() -> None:
    assert layout("us").altgr_key is None
    assert text("us", Keys().tap(e.KEY_RIGHTBRACE, CTRL, ALT)) == "\x1d"  # us: no AltGr
    assert text("gb", Keys().tap(e.KEY_RIGHTBRACE, CTRL, ALT)) == "\x1d"  # nothing there on gb


def test_each_device_has_its_own_state() -> None:
    shared = layout("us")
    one, two = shared.decoder(), shared.decoder()
    assert one.key(SHIFT, 1) == ""
    assert two.key(e.KEY_A, 1) == "a"  # the other device's shift is not ours
    assert one.key(e.KEY_A, 1) == "A"


def test_unknown_layout_is_a_clear_error() -> None:
    with pytest.raises(LayoutError, match=r"'zz' is not in the XKB database.*symbols/zz"):
        Layout("zz")
    with pytest.raises(LayoutError, match=r"'de\(nosuch\)'"):
        Layout("de", "nosuch")


# ---- framing -----------------------------------------------------------------------


def assembler(name: str = "us", **settings: object) -> ScanAssembler:
    settings.setdefault("vid_pid", "05e0:1200")
    return ScanAssembler(layout(name).decoder(), WedgeSettings(**settings))  # type: ignore[arg-type]


def scans(asm: ScanAssembler, keys: Keys) -> list[Scan]:
    return [s for ev in keys.events for s in asm.feed(ev)]


def type_text(keys: Keys, text: str, name: str) -> Keys:
    """Type ASCII digits/letters/GS as a scanner set to ``name`` does (for the tests' data)."""
    for ch in text:
        if ch == "\x1d":
            keys.tap(e.KEY_RIGHTBRACE, CTRL)
        elif ch == "]":  # AltGr+9 on de, AltGr+) on fr
            bracket = {"de": (e.KEY_9, ALTGR), "fr": (e.KEY_MINUS, ALTGR)}
            keys.tap(*bracket.get(name, (e.KEY_RIGHTBRACE,)))
        elif ch.isdigit():
            keys.tap(DIGITS[ch], SHIFT) if name == "fr" else keys.tap(DIGITS[ch])
        elif ch.isupper():
            keys.tap(getattr(e, f"KEY_{ch}"), SHIFT)
        else:
            raise AssertionError(ch)
    return keys


GS1 = "0109506000134352\x1d10LOT42\x1d21S7"


@pytest.mark.parametrize("name", ["us", "de", "fr", "gb"])
def test_gs1_128_with_aim_id_keeps_gs_bytes(name: str) -> None:
    keys = type_text(Keys(), "]C1" + GS1.replace("LOT", "L0T"), name).tap(e.KEY_ENTER)
    (scan,) = scans(assembler(name), keys)
    assert scan == Scan(b"0109506000134352\x1d10L0T42\x1d21S7", "]C1", None)


def test_enter_keypad_enter_and_tab_suffixes() -> None:
    keys = type_text(Keys(), "12", "us").tap(e.KEY_KPENTER)
    keys = type_text(keys, "34", "us").tap(e.KEY_ENTER)
    assert [s.data for s in scans(assembler(), keys)] == [b"12", b"34"]
    tabbed = type_text(Keys(), "12", "us").tap(e.KEY_TAB).tap(e.KEY_ENTER)
    asm = assembler(suffix="tab")
    assert [s.data for s in scans(asm, tabbed)] == [b"12"]
    # Enter is data when Tab ends scans, and a scan with no Tab is cut short.
    assert asm.expire() == Scan(b"\r", None, "cut short: no tab key within 100 ms")


def test_inter_key_timeout_flushes_a_scan_without_suffix() -> None:
    asm = assembler(suffix="none", inter_key_timeout_ms=50)
    assert scans(asm, type_text(Keys(), "1234", "us")) == []
    assert asm.pending
    assert asm.expire() == Scan(b"1234", None, None)
    assert not asm.pending and asm.expire() is None


def test_a_gap_in_event_times_splits_scans_read_late() -> None:
    keys = type_text(type_text(Keys(), "12", "us").gap(80), "34", "us")
    asm = assembler(suffix="none", inter_key_timeout_ms=50)
    assert scans(asm, keys) == [Scan(b"12")]
    assert asm.expire() == Scan(b"34")


def test_timeout_with_a_suffix_configured_is_a_cut_short_bad_read() -> None:
    asm = assembler(inter_key_timeout_ms=50)
    scans(asm, type_text(Keys(), "0950", "us"))
    scan = asm.expire()
    assert scan is not None and scan.data == b"0950"
    assert scan.fault == "cut short: no enter key within 50 ms"


def test_prefix_is_stripped() -> None:
    keys = type_text(Keys(), "ZZ42", "us").tap(e.KEY_ENTER)
    assert scans(assembler(prefix="ZZ"), keys) == [Scan(b"42")]


def test_two_devices_typing_interleaved_do_not_mix() -> None:
    one, two = assembler("us"), assembler("us")
    a = type_text(Keys(), "ABC", "us").tap(e.KEY_ENTER).events
    b = type_text(Keys(), "123", "us").tap(e.KEY_ENTER).events
    got: dict[str, list[Scan]] = {"one": [], "two": []}
    for ea, eb in itertools.zip_longest(a, b):  # one event each in turn: shifts overlap
        got["one"] += one.feed(ea) if ea else []
        got["two"] += two.feed(eb) if eb else []
    assert got == {"one": [Scan(b"ABC")], "two": [Scan(b"123")]}


def test_empty_scan_is_a_bad_read() -> None:
    assert scans(assembler(), Keys().tap(e.KEY_ENTER)) == [Scan(b"", None, "empty scan")]


def test_four_kilobyte_scan_is_a_bad_read_with_the_evidence_kept() -> None:
    keys = Keys()
    for i in range(5000):
        keys.tap(DIGITS[str(i % 10)])
    (scan,) = scans(assembler(max_length=4096), keys.tap(e.KEY_ENTER))
    assert scan.data == b"0123456789" * 409 + b"012345"
    assert scan.fault == "scan longer than max_length 4096 bytes (5000 bytes)"


def test_keys_without_characters_make_a_bad_read_naming_them() -> None:
    keys = type_text(Keys(), "12", "de").tap(e.KEY_F5).tap(e.KEY_1, CTRL).tap(e.KEY_ENTER)
    (scan,) = scans(assembler("de"), keys)
    assert scan.data == b"12"
    assert scan.fault == "2 key(s) with no character in layout 'de': KEY_F5, KEY_1"


def test_control_codes_are_kept_byte_for_byte_and_identify_calls_them_unknown() -> None:
    keys = Keys().tap(e.KEY_A, CTRL).tap(e.KEY_2, CTRL).tap(e.KEY_D, CTRL).tap(e.KEY_ENTER)
    (scan,) = scans(assembler(), keys)
    assert scan == Scan(b"\x01\x00\x04")
    clock = Clock(wall=lambda: 1.78e9, mono_ns=lambda: 1, boot_id="b", synced=lambda: True)
    read = ReadFactory(clock, Uuid7(lambda: 1.78e9)).make("w", scan.data)
    assert identify(read).kind == "unknown"


def test_syn_dropped_marks_the_scan_incomplete() -> None:
    keys = type_text(Keys(), "12", "us")
    keys._ev(e.EV_SYN, e.SYN_DROPPED, 0)
    keys._ev(e.EV_KEY, e.KEY_3, 1)  # part of the lost report: not decoded
    keys._ev(e.EV_SYN, e.SYN_REPORT, 0)
    (scan,) = scans(assembler(), type_text(keys, "4", "us").tap(e.KEY_ENTER))
    assert scan.data == b"124"
    assert scan.fault == "the kernel dropped key events (SYN_DROPPED): scan incomplete"


# ---- settings and matching -----------------------------------------------------------


def test_settings_without_an_identity_are_refused() -> None:
    with pytest.raises(ValueError, match="set path, vid_pid or name_pattern"):
        WedgeSettings()
    with pytest.raises(ValueError, match="vid_pid: four hex digits"):
        WedgeSettings(vid_pid="5e0:1200")
    with pytest.raises(ValueError, match="path: a /dev/input/by-id"):
        WedgeSettings(path="scanner")
    with pytest.raises(ValueError, match="layout: keyboard layout 'xx' is not in the XKB"):
        WedgeSettings(vid_pid="05e0:1200", layout="xx")


KEYBOARD = describe(
    "/dev/input/event3",
    ["/dev/input/by-path/platform-i8042-serio-0-event-kbd"],
    {"ID_INPUT_KEYBOARD": "1", "ID_INPUT_KEY": "1", "ID_BUS": "i8042"},
    {"name": "AT Translated Set 2 keyboard\n", "id/vendor": "0001", "id/product": "0001"},
)
SCANNER = describe(
    "/dev/input/event7",
    ["/dev/input/by-id/usb-Symbol_Bar_Code_Scanner-event-kbd", "/dev/input/by-path/x"],
    {
        "ID_INPUT_KEYBOARD": "1",
        "ID_VENDOR_ID": "05e0",
        "ID_MODEL_ID": "1200",
        "ID_SERIAL_SHORT": "S123",
        "ID_BUS": "usb",
    },
    {"name": "Symbol Technologies, Inc, 2008 Symbol Bar Code Scanner", "uniq": ""},
)
HANDHELD = describe(
    "/dev/input/event9",
    [],
    {"ID_INPUT_KEYBOARD": "1", "ID_BUS": "bluetooth"},
    {"name": "CT10 Keyboard", "id/vendor": "0C2E", "id/product": "0B61", "uniq": "aa:bb:cc"},
)


def test_describe_labels_scanners_and_keyboards_and_picks_a_stable_id() -> None:
    assert (
        Found(
            "wedge",
            "/dev/input/by-id/usb-Symbol_Bar_Code_Scanner-event-kbd",
            "Symbol Technologies, Inc, 2008 Symbol Bar Code Scanner",
            "/dev/input/event7",
            {
                "looks_like": "scanner",
                "bus": "usb",
                "vid_pid": "05e0:1200",
                "serial": "S123",
                "by_id": "/dev/input/by-id/usb-Symbol_Bar_Code_Scanner-event-kbd",
            },
        )
        == SCANNER
    )
    assert KEYBOARD.details["looks_like"] == "keyboard"
    assert KEYBOARD.name == "AT Translated Set 2 keyboard"
    assert HANDHELD.stable_id == "0c2e:0b61:aa:bb:cc"
    assert HANDHELD.details["looks_like"] == "scanner"


def test_matches_says_why_and_never_takes_an_ordinary_keyboard() -> None:
    by_name = WedgeSettings(name_pattern="*bar code*")
    assert WedgeScanner.matches(by_name, KEYBOARD) == (
        False,
        "name 'AT Translated Set 2 keyboard' does not match pattern '*bar code*'",
    )
    ok, why = WedgeScanner.matches(by_name, SCANNER)
    assert ok and "matches pattern" in why
    both = WedgeSettings(vid_pid="05E0:1200", serial="S999")
    assert WedgeScanner.matches(both, SCANNER) == (
        False,
        "serial S123 is not the configured 'S999'",
    )
    assert WedgeScanner.matches(WedgeSettings(vid_pid="05e0:1200"), KEYBOARD) == (
        False,
        "vid:pid 0001:0001 is not the configured 05e0:1200",
    )
    by_path = WedgeSettings(path="/dev/input/by-id/usb-Symbol_Bar_Code_Scanner-event-kbd")
    assert WedgeScanner.matches(by_path, SCANNER)[0]
    assert not WedgeScanner.matches(by_path, KEYBOARD)[0]
    bt = WedgeSettings(vid_pid="0c2e:0b61", serial="aa:bb:cc")
    assert WedgeScanner.matches(bt, HANDHELD) == (
        True,
        "vid:pid 0c2e:0b61 matches; serial aa:bb:cc matches",
    )
    # A config that names a keyboard gets it, with a warning in the reason.
    ok, why = WedgeScanner.matches(WedgeSettings(vid_pid="0001:0001"), KEYBOARD)
    assert ok and why.endswith("(it looks like an ordinary keyboard: check the config)")
    serial_port = Found("serial", "/dev/serial/by-id/x", "x")
    assert WedgeScanner.matches(by_name, serial_port)[0] is False
