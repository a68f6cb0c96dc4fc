"""Use cases: each module is one thing a user of the service does, wired to storage and the
protocol core. No Flask here: the web layer turns HTTP into these calls and back."""
