"""Turning an article's text into a narration: ``script`` splits it into sentences and
groups them into segments by conversation style, ``speech`` synthesises each segment with
espeak-ng and joins them into one WAV whose timings it measures, ``profiles`` names the
narrator voices. ``invitations.services.narrations`` stores the result."""
