"""stages/providers package."""
