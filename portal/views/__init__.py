"""Portal views grouped by area: sign-in, account, tickets (and later help center, API)."""
