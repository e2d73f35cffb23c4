"""The offline demo's data and tiny models (generated, with planted errors)."""
