"""The one retry rule of the project: how long to wait after a failed attempt before the next one.

Webhook deliveries (the operator) and SMS sends (the API) both retry with it. The delay doubles from a base and is
capped, so a receiver that is down for a day is asked a few times an hour rather than hammered or forgotten. No
randomness: the attempt's time is written into the object being retried, so every replica that reads it agrees,
and a test can state the delay exactly."""


def retry_delay(attempts: int, base_seconds: float, cap_seconds: float) -> float:
    """Seconds to wait after the `attempts`-th failure (1 for the first): base, 2×base, 4×base, … at most the cap."""
    if attempts < 1:
        raise ValueError(f"attempts counts failures so far and starts at 1, not {attempts}")
    # The exponent is bounded so that a long-failing item does not build a huge float before the cap applies.
    return min(base_seconds * 2 ** min(attempts - 1, 64), cap_seconds)
