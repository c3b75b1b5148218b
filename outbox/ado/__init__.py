"""outbox/ado package."""
