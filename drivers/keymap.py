"""Key events -> text, in the keyboard layout the scanner is set to, through libxkbcommon.

A keyboard-wedge scanner does not send characters: it presses keys as a
keyboard of its configured country would, so the same label comes out as
``shift+&`` on AZERTY and ``1`` on QWERTY. libxkbcommon holds every layout
of the XKB database (/usr/share/X11/xkb) and applies shift levels, caps
lock, AltGr and control transformation exactly as a desktop would; we only
add what scanners do that desktops do not:

- **The keypad is always NumLock on.** Scanners send KEY_KP0.. and mean
  digits; the host's NumLock is not the scanner's, and a grabbed device has
  its own state. Each state starts with NumLock locked and the NumLock key
  itself is ignored, so a scanner cannot toggle its digits into arrows.
- **Ctrl+] is GS (0x1D) on every layout.** Scanners send the ASCII control
  characters of GS1 codes (GS, RS, EOT) as Ctrl + the key at the US
  position of ``]``, ``^``..., whatever their country (the US-position
  keys have no control meaning in most other layouts: on ``de`` that key is
  ``+``, on ``fr`` it is ``$``). So with Control held we take libxkbcommon's
  control transformation when it gives a C0 code (Ctrl+letter, Ctrl+[ on
  ``us``) and otherwise the US-position punctuation table below. Control
  with a key that has no control meaning types nothing: the key is reported
  as having no character, never typed as its plain character.
- **Alt + keypad digits** (the "Alt mode" of scanners that type characters
  missing from the layout) types the character on Alt's release: below 32 the
  control code itself (Alt+029 is GS), with a leading 0 the Windows-1252
  character, else the code page 437 one, as Windows does.
- **Ctrl+Alt is AltGr where the layout has an AltGr.** Windows treats Ctrl +
  (left) Alt as AltGr, and scanners set up for Windows hosts type ``@`` on a
  German layout as Ctrl+LeftAlt+Q. On a layout whose right Alt is AltGr
  (ISO_Level3_Shift: de, fr, gb...), Ctrl+Alt+key types what AltGr+key types
  there, when that is a character other than the key's own; otherwise (``us``
  has no AltGr, or the key has nothing on that level) Control applies as
  below.
- **Auto-repeat (value 2) types nothing**: repeats are made by the kernel when
  a key is held past its delay; a scanner never means them.

One compiled keymap (immutable) may be shared by any number of devices; each
device gets its own ``KeyDecoder`` (its own shift/caps/AltGr state): two
scanners typing at once never share a shift key.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from evdev import ecodes
from xkbcommon import xkb

XKB_OFFSET = 8  # evdev keycode + 8 = XKB keycode (the X11 convention)
_DOWN = xkb.KeyDirection.XKB_KEY_DOWN
_UP = xkb.KeyDirection.XKB_KEY_UP
_EFFECTIVE = xkb.StateComponent.XKB_STATE_MODS_EFFECTIVE
_LOCKED = xkb.StateComponent.XKB_STATE_MODS_LOCKED
_LEVEL3_SHIFT = 0xFE03  # ISO_Level3_Shift: AltGr

# Control + the key at this US position -> C0 code; the convention of ASCII
# terminals that scanners follow for the separators of GS1 and ISO 15434 data.
_CONTROL_BY_POSITION = {
    ecodes.KEY_2: 0x00,  # Ctrl+@  NUL
    ecodes.KEY_LEFTBRACE: 0x1B,  # Ctrl+[  ESC
    ecodes.KEY_BACKSLASH: 0x1C,  # Ctrl+\  FS
    ecodes.KEY_RIGHTBRACE: 0x1D,  # Ctrl+]  GS (GS1 FNC1 separator)
    ecodes.KEY_6: 0x1E,  # Ctrl+^  RS (ISO 15434 record separator)
    ecodes.KEY_MINUS: 0x1F,  # Ctrl+_  US
}
_KEYPAD_DIGITS = {
    ecodes.KEY_KP0: 0,
    ecodes.KEY_KP1: 1,
    ecodes.KEY_KP2: 2,
    ecodes.KEY_KP3: 3,
    ecodes.KEY_KP4: 4,
    ecodes.KEY_KP5: 5,
    ecodes.KEY_KP6: 6,
    ecodes.KEY_KP7: 7,
    ecodes.KEY_KP8: 8,
    ecodes.KEY_KP9: 9,
}


class LayoutError(ValueError):
    """The layout/variant is not in the XKB database; the message says which and why."""


def _is_modifier(keysym: int) -> bool:
    return (
        0xFFE1 <= keysym <= 0xFFEE  # Shift_L .. Hyper_R
        or 0xFE01 <= keysym <= 0xFE13  # ISO_Lock, ISO_Level3_Shift (AltGr), ISO_Level5_*
        or keysym in (0xFF7E, 0xFF7F, 0xFF14)  # Mode_switch, Num_Lock, Scroll_Lock
    )


class Layout:
    """One compiled XKB keymap for a (layout, variant): immutable, so devices may share it."""

    def __init__(self, layout: str = "us", variant: str = "") -> None:
        self.layout = layout
        self.variant = variant
        messages: deque[str] = deque(maxlen=32)
        # Our own context: XKB_DEFAULT_* in the environment must not change what a
        # config says, and libxkbcommon's complaints go into our error, not stderr.
        context = xkb.Context(no_environment_names=True)
        context.set_log_fn(lambda _ctx, _level, message: messages.append(message.rstrip()))
        try:
            self.keymap = context.keymap_new_from_names(
                rules="evdev", layout=layout, variant=variant or None
            )
        except xkb.XKBKeymapCreationFailure as exc:
            shown = f"{layout}({variant})" if variant else layout
            detail = next((m for m in messages if "find" in m or "include" in m), "")
            hint = f": {detail}" if detail else ""
            raise LayoutError(
                f"keyboard layout {shown!r} is not in the XKB database (/usr/share/X11/xkb){hint}"
            ) from exc

        # The key that is AltGr on this layout (evdev code), if it has one.
        state = self.keymap.state_new()
        self.altgr_key = next(
            (
                code
                for code in (ecodes.KEY_RIGHTALT,)
                if state.key_get_one_sym(code + XKB_OFFSET) == _LEVEL3_SHIFT
            ),
            None,
        )

    @property
    def name(self) -> str:
        return f"{self.layout}({self.variant})" if self.variant else self.layout

    def decoder(self) -> KeyDecoder:
        return KeyDecoder(self)


class KeyDecoder:
    """One device's keyboard state: key events in, typed text out."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._state = self._fresh()
        self._alt_code: list[int] | None = None

    def _fresh(self) -> xkb.KeyboardState:
        state = self.layout.keymap.state_new()
        numlock = ecodes.KEY_NUMLOCK + XKB_OFFSET
        # Press and release NumLock through the keymap's own action: its lock mod
        # (Mod2 in xkeyboard-config) is whatever this keymap says it is.
        state.update_key(numlock, _DOWN)
        state.update_key(numlock, _UP)
        return state

    def reset(self, held: Iterable[int] = ()) -> None:
        """Forget all state (after the kernel dropped events); ``held`` keys are down now."""
        self._state = self._fresh()
        self._alt_code = None
        for code in held:
            if code != ecodes.KEY_NUMLOCK:
                self._state.update_key(code + XKB_OFFSET, _DOWN)

    def _active(self, mod: str) -> bool:
        return bool(self._state.mod_name_is_active(mod, _EFFECTIVE))

    def key(self, code: int, value: int) -> str | None:
        """Feed one EV_KEY event (value 1 down, 0 up, 2 repeat); what it types.

        ``""`` when it types nothing by design (a release, a repeat, a modifier);
        ``None`` for a key down that should type and cannot: no character in this
        layout (F5, an arrow) or Control with a key that has no control code.
        """
        if code == ecodes.KEY_NUMLOCK or value == 2:
            return ""
        keycode = code + XKB_OFFSET
        if value == 0:
            self._state.update_key(keycode, _UP)
            return self._alt_release() if code in (ecodes.KEY_LEFTALT, ecodes.KEY_RIGHTALT) else ""
        if value != 1:
            return None
        keysym = self._state.key_get_one_sym(keycode)
        if _is_modifier(keysym):
            self._state.update_key(keycode, _DOWN)
            if self._active("Mod1"):
                self._alt_code = self._alt_code if self._alt_code is not None else []
            return ""
        text = self._typed(code, keycode)
        self._state.update_key(keycode, _DOWN)
        return text

    def _typed(self, code: int, keycode: int) -> str | None:
        if self._active("Mod1") and code in _KEYPAD_DIGITS and self._alt_code is not None:
            self._alt_code.append(_KEYPAD_DIGITS[code])
            return ""
        if self._active("Control") and self._active("Mod1"):
            altgr = self._windows_altgr(keycode)
            if altgr is not None:
                return altgr
        text: str = self._state.key_get_string(keycode)
        if self._active("Control"):
            if len(text) == 1 and (ord(text) < 0x20 or text == "\x7f"):
                return text
            control = _CONTROL_BY_POSITION.get(code)
            return chr(control) if control is not None else None
        if self._active("Mod1") and not self._active("Control"):
            self._alt_code = None  # Alt with another key: not an Alt code
            return None
        return text or None

    def _windows_altgr(self, keycode: int) -> str | None:
        """What AltGr+key types here (Shift and Caps Lock as they are), if the layout
        has an AltGr and it types a character other than the key's own."""
        altgr = self.layout.altgr_key
        if altgr is None:
            return None
        scratch = self._fresh()
        if self._active("Shift"):
            scratch.update_key(ecodes.KEY_LEFTSHIFT + XKB_OFFSET, _DOWN)
        if self._state.mod_name_is_active("Lock", _LOCKED):
            caps = ecodes.KEY_CAPSLOCK + XKB_OFFSET
            scratch.update_key(caps, _DOWN)
            scratch.update_key(caps, _UP)
        plain: str = scratch.key_get_string(keycode)
        scratch.update_key(altgr + XKB_OFFSET, _DOWN)
        text: str = scratch.key_get_string(keycode)
        if len(text) == 1 and text != plain and text.isprintable():
            return text
        return None

    def _alt_release(self) -> str | None:
        digits, self._alt_code = self._alt_code, None
        if not digits:
            return ""
        value = int("".join(map(str, digits)))
        if value < 0x20:
            return chr(value)
        try:
            return bytes([value % 256]).decode("cp1252" if digits[0] == 0 else "cp437")
        except UnicodeDecodeError:
            return None  # 0x81, 0x8D, 0x8F, 0x90, 0x9D have no Windows-1252 character
