//! The same bad inputs in a real terminal (tmux): the screen says what is wrong and the terminal is left as it was.

use super::*;

fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool, shown: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            shown()
        );
        sleep(Duration::from_millis(100));
    }
}

/// The screen's words joined by single spaces: text the dashboard word-wrapped reads as one
/// line again.
fn words(screen: &str) -> String {
    screen.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs `gan-tui ARGS` in a `width` x `height` tmux pane from a shell that records the terminal
/// settings before and after and the exit status; returns the server and the three files.
fn in_terminal(
    home: &Path,
    name: &str,
    width: u16,
    height: u16,
    args: &str,
) -> (Tmux, [PathBuf; 3]) {
    let files = [
        home.join("stty-before"),
        home.join("stty-after"),
        home.join("exit"),
    ];
    let command = format!(
        "stty -g > {before}; GAN_TUI_CONFIG_DIR={cfg} GAN_TUI_DATA_DIR={data} {bin} {args}; \
         echo \"EXIT=$?\" > {exit}; stty -g > {after}; sleep 60",
        before = sh_quote(&files[0]),
        cfg = sh_quote(&home.join("config")),
        data = sh_quote(&home.join("data")),
        bin = BIN,
        exit = sh_quote(&files[2]),
        after = sh_quote(&files[1]),
    );
    let socket = format!("gan-tui-robust-{name}-{}", std::process::id());
    (Tmux::start(&socket, width, height, &command), files)
}

/// Waits for the shell to record the exit; returns it, checking the terminal was restored.
fn exited(tmux: &Tmux, files: &[PathBuf; 3]) -> String {
    wait_for(
        30,
        "the exit status",
        || files[1].exists(),
        || tmux.screen(),
    );
    sleep(Duration::from_millis(100));
    let before = std::fs::read_to_string(&files[0]).unwrap();
    let after = std::fs::read_to_string(&files[1]).unwrap();
    assert_eq!(
        before,
        after,
        "the terminal was left in another mode\n{}",
        tmux.screen()
    );
    std::fs::read_to_string(&files[2])
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_20x5_terminal_says_it_is_too_small_and_q_quits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let data = small_mnist(&home.path().join("digits"), 64);
    let run = home.path().join("run");
    let args = format!(
        "--max-steps 30 --data-dir {} --run-dir {}",
        sh_quote(&data),
        sh_quote(&run)
    );
    let (tmux, files) = in_terminal(home.path(), "tiny", 20, 5, &args);
    // The message is word-wrapped to the 20 columns; joined up, it reads as one line again.
    let joined = || words(&tmux.screen());
    wait_for(
        30,
        "the too-small message",
        || joined().contains("too small: 20x5"),
        || tmux.screen(),
    );
    let screen = joined();
    assert!(
        screen.contains("needs at least 50x15 (q quits)"),
        "{screen}"
    );
    tmux.keys("q");
    assert_eq!(exited(&tmux, &files), "EXIT=0", "{}", tmux.screen());
    let screen = tmux.screen();
    assert!(!screen.contains("panicked"), "{screen}");
    assert!(
        run.join("checkpoints/latest.safetensors").is_file(),
        "{screen}"
    );
}

#[test]
fn a_bad_theme_is_named_on_the_dashboard_which_runs_on_in_the_default_theme() {
    let home = tempfile::tempdir().unwrap();
    let themes = home.path().join("config/themes");
    std::fs::create_dir_all(&themes).unwrap();
    std::fs::copy(
        input("themes/bad_colour.toml"),
        themes.join("bad_colour.toml"),
    )
    .unwrap();
    // The built-in MNIST: its first epoch takes seconds, so the warning is not yet replaced by
    // the note of an end-of-epoch checkpoint when the screen is read.
    let args = format!(
        "--theme bad_colour --epochs 1 --run-dir {}",
        sh_quote(&home.path().join("run"))
    );
    let (tmux, files) = in_terminal(home.path(), "theme", 160, 40, &args);
    wait_for(
        30,
        "the theme warning",
        || tmux.screen().contains("blurple"),
        || tmux.screen(),
    );
    let screen = tmux.screen();
    assert!(
        screen.contains("bad_colour.toml") && screen.contains("loss_d"),
        "{screen}"
    );
    assert!(
        screen.contains("losses"),
        "the dashboard is drawn:\n{screen}"
    );
    tmux.keys("q");
    assert_eq!(exited(&tmux, &files), "EXIT=0", "{}", tmux.screen());
}

#[test]
fn a_bad_config_in_a_terminal_leaves_it_as_it_was() {
    // The dashboard would take the terminal over; a bad config must stop the run before that.
    let home = tempfile::tempdir().unwrap();
    let file = input("config/zero_batch.toml");
    let (tmux, files) = in_terminal(
        home.path(),
        "config",
        80,
        24,
        &format!("--config {}", sh_quote(&file)),
    );
    assert_eq!(exited(&tmux, &files), "EXIT=1");
    let screen = tmux.unwrapped_screen();
    let error = format!(
        "error: {}:2: train.batch_size = 0 is out of range",
        shown(&file)
    );
    assert!(screen.contains(&error), "{screen}");
    assert!(!home.path().join("data").exists(), "a run folder was made");
}
