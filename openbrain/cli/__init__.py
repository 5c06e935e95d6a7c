"""The terminal clients `ob` (one turn) and `ob-chat` (a session)."""
