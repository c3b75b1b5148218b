"""outbox/emulator package."""
