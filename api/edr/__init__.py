"""OGC API - EDR position and area queries on cube items (README, "EDR queries")."""
