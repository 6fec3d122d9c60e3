"""Exceptions raised by the device layer.

Every message names the device and says what to do next, because these messages end up
in front of an operator on the shop floor or in an engineer's log. Extra attributes are
keyword-only with defaults so the exceptions survive pickling (Temporal, multiprocessing).
"""

from __future__ import annotations


class DeviceError(Exception):
    """Base class for every failure talking to an instrument or a PLC."""


class DeviceConnectionError(DeviceError):
    """The device could not be reached: port missing, busy, refused or unreachable."""


class ScaleError(DeviceError):
    """Base class for failures reported by, or talking to, a scale."""


class ScaleUnstable(ScaleError):
    """The scale did not settle (or stayed busy) within the allowed time."""


class ScaleOverload(ScaleError):
    """The load is above the scale's weighing (or zero/tare) range."""


class ScaleUnderload(ScaleError):
    """The load is below the scale's lower limit (typically the pan is missing)."""


class ScaleCommandError(ScaleError):
    """The scale rejected a command or sent a line this client cannot interpret.

    `code` is the MT-SICS error code as sent (`ES`, `ET`, `EL`, or a command-specific
    status such as `L`); it is None when the line itself could not be parsed. `raw` is
    the offending line without its CRLF.
    """

    def __init__(self, message: str, *, code: str | None = None, raw: str | None = None):
        super().__init__(message)
        self.code = code
        self.raw = raw


class ScaleTimeout(ScaleError):
    """The scale did not answer a command in time."""


class ScaleConnectionError(ScaleError, DeviceConnectionError):
    """The scale's port could not be opened; both a ScaleError and a DeviceConnectionError."""


class PlcError(DeviceError):
    """A PLC refused a request, did not answer, or holds values other than those written.

    `exception_code` is the Modbus exception code when the PLC answered with one.
    """

    def __init__(self, message: str, *, exception_code: int | None = None):
        super().__init__(message)
        self.exception_code = exception_code


class PlcTimeout(PlcError):
    """The PLC accepted the connection but did not answer a request in time."""


class PlcConnectionError(PlcError, DeviceConnectionError):
    """The PLC could not be reached; both a PlcError and a DeviceConnectionError."""
