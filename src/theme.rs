//! Colour themes by meaning, loaded from TOML; the default one is compiled in.
