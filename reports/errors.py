"""Exceptions raised by the eBMR report pipeline (render → sign → publish → verify).

Every message names the thing that went wrong and what to do about it, because these
errors surface in Temporal activity failures that an operator or an admin reads.
"""

from __future__ import annotations

import asyncio


class ReportError(Exception):
    """Base class: anything that stops the batch record PDF from being produced or checked."""


class RenderError(ReportError):
    """The record could not be turned into a PDF (bad record, template or layout problem)."""


class SigningError(ReportError):
    """The PDF could not be signed (key material, certificate or pyHanko problem)."""


class SigningIdentityError(SigningError):
    """The signing key/certificate files are missing, unreadable or inconsistent."""


class VerificationError(ReportError):
    """Verification could not even start: the input is not a PDF, or the trust root is unusable.

    A PDF that *is* a PDF but fails checks is not an error: `verify_pdf` reports it.
    """


class PublishError(ReportError):
    """The finished PDF could not be written to its final location."""


def require_worker_thread(operation: str) -> None:
    """Fail clearly when a blocking call is made on an event loop thread.

    pyHanko's synchronous API runs its own `asyncio.run`, which cannot nest inside a running
    loop; without this check the caller would see a bare RuntimeError from asyncio.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ReportError(
        f"{operation} is blocking and was called on an asyncio event loop thread; "
        "call it from a worker thread (a sync Temporal activity, or asyncio.to_thread)"
    )
