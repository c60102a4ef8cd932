"""AI assist: text models, field suggestions, "enhance all" and prompt enhancement (docs/architecture.md)."""
