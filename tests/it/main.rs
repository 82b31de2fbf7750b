//! Integration tests of the real `gan-tui` binary, in one test binary so the suite links once.

mod common;

mod bad_inputs;
mod crash;
mod dashboard;
mod fuzz_inputs;
mod headless;
mod peer_uid;
mod resume;
mod watch;
