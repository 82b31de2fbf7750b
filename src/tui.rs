//! The dashboard front end: terminal setup and restore, the event loop, frame pacing.
