"""Phone-number helpers shared by the sandbox's SMS providers (Twilio, Vonage)."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MSISDN = re.compile(r"^[1-9]\d{6,14}$")
CHANNEL_PREFIXES = ("whatsapp:", "messenger:", "rcs:")
