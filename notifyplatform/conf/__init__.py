"""Blocks of settings by topic, each read from the environment; ``notifyplatform.settings``
imports them (names, defaults and variables are those the README lists)."""
