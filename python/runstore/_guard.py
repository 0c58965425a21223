"""Every error a user can cause is a :class:`runstore.Error` naming the file.

The calls of :class:`Store`, :class:`Run`, :class:`Table` and :class:`RunList` meet errors
runstore did not raise itself: pyarrow's (``ArrowInvalid`` when columns differ in length or a
pandas object column mixes types), Python's (``TypeError`` for an argument of the wrong type,
``OverflowError`` for a negative count) and PyO3's argument checks. :func:`guard` wraps every
public method and property of a class so those leave it as runstore errors: a ``TypeError``
(or a pyarrow type or "not implemented" error) as :class:`InvalidType`, which is also a
``TypeError``; a ``ValueError`` or ``OverflowError`` as :class:`InvalidInput`, also a
``ValueError``; the original chained as ``__cause__``. Each message starts with what the call
was about (``store /x.runs, run p/runs/r``), and a runstore error whose message does not name
the store file gets it appended, so no error leaves a user guessing which file it was.

Names in ``skip`` stay unwrapped: hot paths (``Run.log``) translate their own errors with a
``try`` that costs nothing until something fails.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterable, Iterator, Type

import pyarrow as pa

from ._errors import Error, InvalidInput, InvalidType

#: Exceptions that become :class:`InvalidType`.
_TYPE_ERRORS = (TypeError, NotImplementedError, pa.ArrowTypeError, pa.ArrowNotImplementedError)
#: Exceptions that become :class:`InvalidInput`.
_VALUE_ERRORS = (ValueError, OverflowError, pa.ArrowInvalid, pa.ArrowIndexError)


def translate(error: BaseException, context: str) -> Error:
    """``error`` (not a runstore error) as the runstore error to raise from it, its message
    prefixed with ``context``."""
    text = str(error) or type(error).__name__
    message = f"{context}: {text}" if context else text
    if isinstance(error, _TYPE_ERRORS):
        return InvalidType(message)
    return InvalidInput(message)


def name_file(error: Error, path: str, context: str = "") -> None:
    """Appends ``(CONTEXT)`` (default ``store PATH``) to ``error``'s message unless it names
    the file already."""
    if not path or not error.args:
        return
    message = str(error.args[0])
    if path not in message:
        error.args = (f"{message} ({context or f'store {path}'})", *error.args[1:])


@contextlib.contextmanager
def naming(path: str, context: str) -> Iterator[None]:
    """Inside the block, a runstore error whose message does not name the file ``path`` gets
    ``(CONTEXT)`` appended: for a call that knows more than its object (the table a
    conversion is for), before :func:`guard`'s wrapper adds the object's context."""
    try:
        yield
    except Error as error:
        name_file(error, path, context)
        raise


def _wrap(
    func: Callable[..., Any], context_of: Callable[[Any], "tuple[str, str]"]
) -> Callable[..., Any]:
    @functools.wraps(func)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except Error as error:
            name_file(error, *context_of(self))
            raise
        except (*_TYPE_ERRORS, *_VALUE_ERRORS) as error:
            raise translate(error, context_of(self)[1]) from error

    return guarded


def guard(
    cls: Type[Any],
    context_of: Callable[[Any], "tuple[str, str]"],
    skip: Iterable[str] = (),
) -> None:
    """Wraps the public methods and properties of ``cls`` (static methods and names in
    ``skip`` excepted). ``context_of(obj)`` gives ``(store path, context)``: the file to
    name and what a translated message starts with. It must not raise."""
    skipped = set(skip)
    for name, attribute in list(vars(cls).items()):
        if name.startswith("_") or name in skipped:
            continue
        if isinstance(attribute, property):
            setattr(
                cls,
                name,
                property(
                    _wrap(attribute.fget, context_of) if attribute.fget else None,
                    _wrap(attribute.fset, context_of) if attribute.fset else None,
                    attribute.fdel,
                    attribute.__doc__,
                ),
            )
        elif isinstance(attribute, (staticmethod, classmethod)):
            continue
        elif callable(attribute):
            setattr(cls, name, _wrap(attribute, context_of))
