"""A fast positional constructor for frozen, slotted dataclasses on the read path.

A frozen dataclass's ``__init__`` sets every field through
``object.__setattr__`` (its own ``__setattr__`` refuses): for ``Read``'s 15
fields that is ~3 µs, more than the whole rules step of a portal read, and an
RFID reader hands the agent tens of thousands of reads a second.

``positional(cls)`` builds a plain twin class with the same slots in the same
order, whose ``__init__`` stores them as ordinary attributes (~0.3 µs), and then
gives the new object its real class with one ``__class__`` assignment: what
comes out *is* a ``cls`` (frozen, hashable, equal to one built the usual way),
only built faster. It takes every field, in declaration order, with no
defaults and no checks, so it serves code that fills all of them anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def positional(cls: type[T]) -> Callable[..., T]:
    """``cls(*every_field)``, faster. ``cls`` must be a frozen dataclass with slots=True."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if tuple(cls.__dict__["__slots__"]) != tuple(names) or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}: its slots are not exactly its fields")
    body = "".join(f"    self.{n} = {n}\n" for n in names)
    source = f"def __init__(self, {', '.join(names)}):\n{body}    self.__class__ = cls\n"
    scope: dict[str, Any] = {"cls": cls}
    exec(source, scope)  # the source is made of the dataclass's own field names only
    slots = {"__slots__": tuple(names), "__init__": scope["__init__"]}
    twin: Callable[..., T] = type(f"_{cls.__name__}Twin", (), slots)
    return twin
