"""The demo ecosystem (demo mode only): locally generated keys for demo trust anchors and a demo
intermediary, so that `config/demo.toml` can declare them. Nothing here runs in production."""
