"""How the LLRP driver gets a reader inventorying when it answers unlike sllurp expects.

Strict in what is sent (every frame is sllurp's encoding of a valid LLRP
message), liberal in what is taken, as long as tags keep arriving (issue 17):

- A refused *optional* request (``OPTIONAL``: inventory goes on without it) is
  logged once per reader as a warning and skipped; sllurp, which would stop,
  is handed the success it waits for.
- A refused *required* request (``REQUIRED``) is a fault that names the
  request and the reader's status text; the driver reconnects with backoff.
- DELETE_ROSPEC 0 ("all ROSpecs") refused: this is cleanup, so the driver
  deletes the one ROSpec id it owns instead (``ROSPEC_ID``) and goes on.
  GET_ROSPECS is not used for the fallback: sllurp has no decoder for its
  answer. A ROSpec another client left under another id keeps running; its
  tags are still tags.
- An Immediate start trigger the reader enables but never starts: see
  ``StartWatch``; or ``start_trigger = "explicit"`` (``Client``).

Only answers matched by message id to a request of ours are treated so: an
unsolicited refusal is a fault, as before. ``Setup`` decides, without I/O; the
driver (drivers/llrp.py) owns the socket, the timers and sllurp's state machine.
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sllurp.llrp import LLRPClient, LLRPMessage

from agent.logs import event
from drivers.llrp_link import LinkError, rejection

log = logging.getLogger("edgetally.drivers.llrp")

StartTrigger = Literal["immediate", "explicit"]

# sllurp's LLRPClient.getROSpec always builds ROSpec 1: the one id this driver owns.
ROSPEC_ID = 1
OWN_IDS = 0x80000000  # message ids for frames sent outside sllurp (GPO, START, cleanup)
OWN_KEPT = 256  # our frames awaiting an answer; past it, unanswered GPO writes are forgotten

# Requests whose refusal does not stop inventory, and why (what the log line says).
OPTIONAL: dict[str, str] = {
    "ENABLE_EVENTS_AND_REPORTS": (
        "events and reports still come as they happen when the reader holds none"
    ),
    "KEEPALIVE_ACK": "the reader's keepalives still show it is alive",
    "GET_READER_CONFIG": "nothing in the answer is used",
    "DELETE_ACCESSSPEC": "cleanup only: this driver adds no AccessSpec",
    "CLOSE_CONNECTION": "the connection is closed anyway",
}
# Requests without which there is no inventory: a refusal is a fault naming the step.
REQUIRED = (
    "IMPINJ_ENABLE_EXTENSIONS",
    "GET_READER_CAPABILITIES",
    "SET_READER_CONFIG",
    "ADD_ROSPEC",
    "ENABLE_ROSPEC",
    "START_ROSPEC",  # sent by start_trigger = "explicit", or after the start window
)
# What sllurp waits for after an optional request (None: it waits for nothing).
AWAITED: dict[str, str | None] = {
    "ENABLE_EVENTS_AND_REPORTS": None,
    "KEEPALIVE_ACK": None,
    "GET_READER_CONFIG": "GET_READER_CONFIG_RESPONSE",
    "DELETE_ACCESSSPEC": "DELETE_ACCESSSPEC_RESPONSE",
    "CLOSE_CONNECTION": None,
}
_NAMES = {
    1: "GET_READER_CAPABILITIES",
    2: "GET_READER_CONFIG",
    3: "SET_READER_CONFIG",
    14: "CLOSE_CONNECTION",
    20: "ADD_ROSPEC",
    21: "DELETE_ROSPEC",
    22: "START_ROSPEC",
    23: "STOP_ROSPEC",
    24: "ENABLE_ROSPEC",
    25: "DISABLE_ROSPEC",
    41: "DELETE_ACCESSSPEC",
    64: "ENABLE_EVENTS_AND_REPORTS",
    72: "KEEPALIVE_ACK",
    1023: "IMPINJ_ENABLE_EXTENSIONS",  # the only custom message sllurp sends
}
_SPEC_COMMANDS = {21, 22, 23, 24, 25, 41}  # requests whose body starts with a spec id
_HEAD = struct.Struct("!HII")
SENT_KEPT = 64  # requests remembered for their answer; keepalive acks come and go


@dataclass(frozen=True, slots=True)
class Request:
    """A request written to the reader, as its answer will be matched to it."""

    name: str
    spec_id: int | None = None  # the ROSpec/AccessSpec id of a spec command


class Sent:
    """The latest requests written, by message id, so an ERROR_MESSAGE (which names
    only the id) or a failed response can be told apart by what it answers."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[int, Request] = OrderedDict()

    def note(self, frame: bytes) -> None:
        if len(frame) < _HEAD.size:
            return
        word, _, msg_id = _HEAD.unpack_from(frame)
        name = _NAMES.get(word & 0x3FF)
        if name is None:
            return
        spec = None
        if word & 0x3FF in _SPEC_COMMANDS and len(frame) >= _HEAD.size + 4:
            (spec,) = struct.unpack_from("!I", frame, _HEAD.size)
        self._by_id[msg_id] = Request(name, spec)
        while len(self._by_id) > SENT_KEPT:
            self._by_id.popitem(last=False)

    def answer(self, msg_id: object) -> Request | None:
        """The request an answer with ``msg_id`` is for (forgotten once answered)."""
        return self._by_id.pop(msg_id, None) if isinstance(msg_id, int) else None

    def clear(self) -> None:
        self._by_id.clear()


def answered(name: str, request: Request | None) -> str | None:
    """The request a refusal answers: by its id, else by the response's name."""
    if request is not None:
        return request.name
    if name.endswith("_RESPONSE"):
        return name.removesuffix("_RESPONSE")
    return None


def succeeded(response: str, msg_id: int) -> LLRPMessage:
    """A success answer for sllurp's state machine, which stops on any refusal, for a
    request whose refusal this driver skips. Built without bytes: sllurp has no
    encoder for responses, and only its dict is read."""
    msg = LLRPMessage.__new__(LLRPMessage)
    msg.msgname = response
    msg.msgbytes = b""
    msg.msgdict = {
        response: {
            "ID": msg_id,
            "LLRPStatus": {"StatusCode": "Success", "ErrorDescription": ""},
        }
    }
    return msg


SpecName = Literal["START_ROSPEC", "DELETE_ROSPEC"]


def spec_frame(name: SpecName, msg_id: int, rospec_id: int) -> bytes:
    """A START_ROSPEC or DELETE_ROSPEC of the driver's own, in sllurp's encoding."""
    data: bytes = LLRPMessage(msgdict={name: {"ID": msg_id, "ROSpecID": rospec_id}}).msgbytes
    return data


def rospec_started(body: Mapping[str, Any]) -> int | None:
    """The ROSpec id of a READER_EVENT_NOTIFICATION that says a ROSpec started."""
    data = body.get("ReaderEventNotificationData")
    ev = data.get("ROSpecEvent") if isinstance(data, dict) else None
    if isinstance(ev, dict) and ev.get("EventType") == "Start_of_ROSpec":
        rospec = ev.get("ROSpecID")
        return rospec if type(rospec) is int else None
    return None


class StartWatch:
    """Whether our ROSpec needs a START_ROSPEC: at once with an explicit (Null) start
    trigger; with an Immediate one, only when no RO_ACCESS_REPORT and no "ROSpec
    started" event came within the window after ENABLE_ROSPEC (a reader seen to
    enable such a ROSpec and never start it: only KEEPALIVEs arrive)."""

    def __init__(self, trigger: StartTrigger, window_s: float) -> None:
        self.trigger = trigger
        self.window_s = window_s
        self.started = False
        self.enabled_at: float | None = None

    def reset(self) -> None:
        """A new connection: nothing enabled, nothing started."""
        self.started = False
        self.enabled_at = None

    def enabled(self, now: float) -> bool:
        """ENABLE_ROSPEC succeeded; True when START_ROSPEC is to be sent at once."""
        self.enabled_at = now
        return self.trigger == "explicit"

    def heard_start(self) -> None:
        self.started = True

    def due(self, now: float) -> bool:
        """True once the window has passed with no sign that the ROSpec runs."""
        return (
            self.trigger == "immediate"
            and not self.started
            and self.enabled_at is not None
            and now - self.enabled_at >= self.window_s
        )


class Client(LLRPClient):  # type: ignore[misc]  # sllurp is untyped
    """sllurp's client, with the ROSpec's start trigger Null for ``explicit``: the
    reader then waits for our START_ROSPEC instead of starting on ENABLE_ROSPEC.
    (sllurp hard-codes an Immediate trigger in LLRPROSpec.)"""

    def __init__(self, *args: Any, start_trigger: StartTrigger = "immediate", **kw: Any):
        super().__init__(*args, **kw)
        self.start_trigger = start_trigger

    def getROSpec(self, force_new: bool = False) -> Any:  # sllurp's name
        rospec = super().getROSpec(force_new=force_new)
        if self.start_trigger == "explicit":
            rospec["ROBoundarySpec"]["ROSpecStartTrigger"]["ROSpecStartTriggerType"] = "Null"
        return rospec


def refusal_text(request: str | None, why: str) -> str:
    """The fault for a refused required step: the step, then the reader's words."""
    if request is None:
        return why
    prefix = "reader could not take a message (ERROR_MESSAGE): "
    if why.startswith(prefix):
        why = f"reader refused {request} (ERROR_MESSAGE): {why.removeprefix(prefix)}"
    if request in REQUIRED:
        why += " (a required step: no inventory without it)"
    hint = " (not an Impinj reader? then set impinj_extensions = false)"
    if request == "IMPINJ_ENABLE_EXTENSIONS" and hint not in why:
        why += hint  # other readers answer Impinj's custom message with ERROR_MESSAGE
    return why


@dataclass(frozen=True, slots=True)
class Answer:
    """What the driver does with a refusal or with the answer to a frame of ours:
    ``feed`` sllurp this message in its place, and/or ``send`` this frame."""

    feed: LLRPMessage | None = None
    send: bytes | None = None


OwnPurpose = Literal["gpo", "start", "cleanup"]


class Setup:
    """One reader's setup bookkeeping across its connections: the requests written
    (``sent``), the frames of our own awaiting an answer, the start watch, and what
    this reader needed that a plain one does not (``quirks``: step -> what was done,
    logged as a warning the first time per reader, at debug after)."""

    def __init__(self, device: str, where: str, trigger: StartTrigger, window_s: float) -> None:
        self.device = device
        self.where = where
        self.sent = Sent()
        self.start = StartWatch(trigger, window_s)
        self.quirks: dict[str, str] = {}
        self._own: dict[int, tuple[OwnPurpose, int]] = {}
        self._next_id = OWN_IDS
        self._warned: set[str] = set()

    def connected(self) -> None:
        """A new connection: nothing sent, nothing started."""
        self.sent.clear()
        self._own.clear()
        self.start.reset()

    def own_id(self, purpose: OwnPurpose, theirs: int = 0) -> int:
        """A message id for a frame of ours; ``theirs``: the sllurp request it stands in for."""
        self._next_id = self._next_id + 1 if self._next_id < 0xFFFFFFFF else OWN_IDS
        if len(self._own) > OWN_KEPT:  # a reader that never answers GPO writes
            for key in [k for k, (p, _) in self._own.items() if p == "gpo"]:
                del self._own[key]
        self._own[self._next_id] = (purpose, theirs)
        return self._next_id

    def own_frame(self, purpose: OwnPurpose, name: SpecName, theirs: int = 0) -> bytes:
        return spec_frame(name, self.own_id(purpose, theirs), ROSPEC_ID)

    def own(self, msg_id: object) -> tuple[OwnPurpose, int] | None:
        """What the frame of ours that ``msg_id`` answers was for (forgotten once answered)."""
        return self._own.pop(msg_id, None) if type(msg_id) is int else None

    def adapt(self, step: str, what: str) -> None:
        self.quirks[step] = what
        first = step not in self._warned
        self._warned.add(step)
        event(
            log,
            "llrp_reader_quirk",
            level=logging.WARNING if first else logging.DEBUG,
            device=self.device,
            reader=self.where,
            step=step,
            done=what,
        )

    def refused(self, name: str, msg_id: object, why: str, closing: bool) -> Answer | None:
        """A refusal from the reader: an Answer when dealt with here (sllurp does not see
        it); None to hand it to sllurp (only while closing: it goes on to the goodbye);
        a LinkError for a required step or a refusal of nothing we sent."""
        request = self.sent.answer(msg_id)
        step = answered(name, request)
        if request is not None and type(msg_id) is int:
            if request.name in OPTIONAL:
                self.adapt(
                    request.name, f"{refusal_text(step, why)}; skipped: {OPTIONAL[request.name]}"
                )
                if request.name == "CLOSE_CONNECTION":
                    raise LinkError("connection closed")
                awaited = AWAITED[request.name]
                return Answer(feed=succeeded(awaited, msg_id) if awaited else None)
            if request.name == "DELETE_ROSPEC" and request.spec_id == 0:
                self.adapt(
                    "DELETE_ROSPEC 0",
                    f"{refusal_text(step, why)}; deleting ROSpec {ROSPEC_ID} (ours) instead",
                )
                return Answer(send=self.own_frame("cleanup", "DELETE_ROSPEC", msg_id))
        if closing:
            return None
        raise LinkError(refusal_text(step, why))

    def own_answer(
        self, own: tuple[OwnPurpose, int], name: str, body: Mapping[str, Any], closing: bool
    ) -> Answer:
        """The reader's answer to a frame of ours."""
        purpose, theirs = own
        why = rejection(name, body)
        if purpose == "cleanup":
            # Deleted, or "no such ROSpec": either way nothing of ours is left; sllurp
            # gets the success of its DELETE_ROSPEC 0 and goes on to add our ROSpec.
            return Answer(feed=succeeded("DELETE_ROSPEC_RESPONSE", theirs))
        if purpose == "start":
            if why is None:
                self.start.heard_start()
            elif self.start.trigger == "explicit" and not closing:
                raise LinkError(refusal_text("START_ROSPEC", why))
            else:  # the ROSpec may be running with no tag in view: reads will tell
                self.adapt("START_ROSPEC refused", refusal_text("START_ROSPEC", why))
        elif why is not None:
            event(log, "llrp_gpo_failed", level=logging.WARNING, device=self.device, error=why)
        return Answer()

    def start_needed(self, now: float) -> bytes | None:
        """The start window passed: START_ROSPEC for a ROSpec enabled but never started."""
        if not self.start.due(now):
            return None
        self.adapt(
            "START_ROSPEC",
            f"no report and no ROSpec start within {self.start.window_s:g} s of "
            f"ENABLE_ROSPEC (Immediate start trigger): sent START_ROSPEC {ROSPEC_ID}",
        )
        self.start.heard_start()  # once per connection
        return self.own_frame("start", "START_ROSPEC")
