//! Key presses to actions: a pure map with one-line descriptions for the help popup.
