//! Integration tests of the real `gan-tui` binary, in one test binary so the suite links once.

mod common;

mod crash;
mod dashboard;
mod headless;
mod resume;
