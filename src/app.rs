//! Dashboard state and its pure update function.
