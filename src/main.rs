//! The `gan-tui` binary: parse the command line, run, turn an error into a message and exit code.

use clap::Parser;

fn main() {
    let cli = gan_tui::cli::Cli::parse();
    let code = match gan_tui::run(cli) {
        Ok(code) => code,
        Err(e) => {
            gan_tui::console::warn(format!("error: {}", gan_tui::console::error_text(&e)));
            1
        }
    };
    std::process::exit(code);
}
