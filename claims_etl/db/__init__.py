"""Database access: connections and dialects (`connections`), SQL loaded from queries/ (`sql`)."""
