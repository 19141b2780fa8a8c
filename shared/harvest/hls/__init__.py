"""HLS: the typed playlist model, parsing, window selection and VOD rendering (pure domain code)."""
