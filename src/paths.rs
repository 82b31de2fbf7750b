//! Where config, themes, data and runs live: `directories` plus environment overrides.
