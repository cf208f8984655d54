"""What the API layer adds to the kiosk API's bodies: their models are the contract both
the service and the kiosk import (kioskapi.models); here is only the service's decoding."""

from __future__ import annotations

import base64
import binascii


def decode_base64(value: str) -> bytes | None:
    """Standard base64 (padding required) to bytes; None when it is not valid base64."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
