//! The real binary's dashboard in a real terminal (tmux): digits and losses appear, `p` pauses
//! (the step count stops), `r` redraws the grid, `s` writes a checkpoint, `q` quits, restoring
//! the terminal and printing the summary.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;

/// The digit panel's rows: the right-hand box of the screen's upper part.
fn digit_panel(screen: &str) -> String {
    screen
        .lines()
        .take(30)
        .filter_map(|l| l.char_indices().nth(55).map(|(i, _)| l[i..].to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_dashboard_shows_training_and_answers_its_keys() {
    let home = tempfile::tempdir().unwrap();
    test_user_config(home.path());
    let data = small_mnist(&home.path().join("digits"), 256);
    let run = home.path().join("run");
    let out = home.path().join("after.txt");
    let stty_before = home.path().join("stty-before");
    let stty_after = home.path().join("stty-after");
    let command = format!(
        "stty -g > {sb}; GAN_TUI_CONFIG_DIR={cfg} GAN_TUI_DATA_DIR={dd} {bin} --epochs 10000 --seed 2 \
         --data-dir {data} --run-dir {run}; echo \"EXIT=$?\" > {out}; stty -g > {sa}; sleep 60",
        sb = sh_quote(&stty_before),
        cfg = sh_quote(&home.path().join("config")),
        dd = sh_quote(&home.path().join("data")),
        bin = BIN,
        data = sh_quote(&data),
        run = sh_quote(&run),
        out = sh_quote(&out),
        sa = sh_quote(&stty_after),
    );
    let socket = format!("gan-tui-test-{}", std::process::id());
    let tmux = Tmux::start(&socket, 120, 40, &command);

    // Loss values appear, and digits drawn by a trained generator (the grid's title names the
    // step it comes from; samples are refreshed every 100 steps).
    let screen = tmux.wait_for(60, "losses and a trained generator's digits", |s| {
        s.contains("D loss")
            && s.contains("G loss")
            && s.contains("RUNNING")
            && shown_step(s).unwrap_or(0) > 0
            && !s.contains("digits · step 0 ")
    });
    assert!(screen.contains("digits"), "{screen}");
    let ink = digit_panel(&screen)
        .chars()
        .filter(|c| "=+*#%@".contains(*c))
        .count();
    assert!(ink > 20, "no digit shading in the grid:\n{screen}");

    // p: PAUSED, and the step count stops.
    tmux.keys("p");
    let paused = tmux.wait_for(10, "PAUSED", |s| s.contains("PAUSED"));
    let step = shown_step(&paused).unwrap();
    sleep(Duration::from_millis(1500));
    let later = tmux.screen();
    assert_eq!(
        shown_step(&later),
        Some(step),
        "steps went on while paused:\n{later}"
    );

    // m in tmux (paused, so no news takes the status line first): half blocks, then back to ASCII (no picture mode), saying why once.
    tmux.keys("m");
    tmux.wait_for(10, "the half-block mode", |s| s.contains("half-block"));
    tmux.keys("m");
    let back = tmux.wait_for(10, "ASCII again", |s| {
        s.contains("· ascii") && s.contains("no pictures inside tmux")
    });
    assert!(!back.contains("picture ─"), "{back}");

    // r: a new noise batch, drawn at once even while paused.
    let before = digit_panel(&tmux.screen());
    tmux.keys("r");
    tmux.wait_for(10, "a resampled grid", |s| digit_panel(s) != before);

    // s: a checkpoint of the paused step.
    tmux.keys("s");
    let ckpt = run.join(format!("checkpoints/step-{step:07}.safetensors"));
    let name = format!("step-{step:07}.safetensors");
    tmux.wait_for(10, "the checkpoint note", |s| s.contains(&name));
    assert!(ckpt.is_file(), "{} missing", ckpt.display());

    // q: quit; the terminal is restored and the summary printed.
    tmux.keys("q");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.exists() {
        assert!(
            Instant::now() < deadline,
            "gan-tui did not exit; screen:\n{}",
            tmux.screen()
        );
        sleep(Duration::from_millis(100));
    }
    sleep(Duration::from_millis(300));
    let exit = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exit.trim(), "EXIT=0");
    assert_eq!(
        std::fs::read_to_string(&stty_before).unwrap(),
        std::fs::read_to_string(&stty_after).unwrap(),
        "terminal modes not restored"
    );
    let screen = tmux.screen();
    assert!(
        screen.contains("Run folder:") || screen.contains("run folder"),
        "{screen}"
    );
    assert!(
        !screen.contains("RUNNING") && !screen.contains("PAUSED"),
        "dashboard still on screen:\n{screen}"
    );
}

/// Starts the dashboard in tmux on small data; returns the tmux server, the run folder and the
/// file the shell writes the exit status to.
fn start_dashboard(home: &Path, socket: &str) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    test_user_config(home);
    let data = small_mnist(&home.join("digits"), 128);
    let run = home.join("run");
    let exit = home.join("exit.txt");
    let command = format!(
        "GAN_TUI_CONFIG_DIR={cfg} GAN_TUI_DATA_DIR={dd} {bin} --epochs 10000 --data-dir {data} \
         --run-dir {run}; echo \"EXIT=$?\" > {exit}; sleep 60",
        cfg = sh_quote(&home.join("config")),
        dd = sh_quote(&home.join("data")),
        bin = BIN,
        data = sh_quote(&data),
        run = sh_quote(&run),
        exit = sh_quote(&exit),
    );
    let tmux = Tmux::start(socket, 120, 40, &command);
    tmux.wait_for(30, "training", |s| {
        s.contains("RUNNING") && shown_step(s).unwrap_or(0) > 0
    });
    (tmux, run, exit)
}

/// Processes still running from `run` (the binary's command line names the run folder).
fn still_running(run: &Path) -> bool {
    let out = Command::new("pgrep")
        .args(["-f", &format!("^{BIN} .*{}", run.display())])
        .output()
        .unwrap();
    !out.stdout.is_empty()
}

#[test]
fn sigterm_saves_a_checkpoint_restores_the_terminal_and_exits_143() {
    let home = tempfile::tempdir().unwrap();
    let socket = format!("gan-tui-term-{}", std::process::id());
    let (tmux, run, exit) = start_dashboard(home.path(), &socket);
    let pid = Command::new("pgrep")
        .args(["-f", &format!("^{BIN} .*{}", run.display())])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
    assert!(!pid.is_empty());
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_until(30, "the exit status", || exit.exists());
    sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "EXIT=143");
    assert!(run.join("checkpoints/latest.safetensors").is_file());
    let screen = tmux.screen();
    assert!(
        screen.contains("Run folder:") && !screen.contains("RUNNING"),
        "{screen}"
    );
}

#[test]
fn a_terminal_that_hangs_up_ends_the_run_with_a_checkpoint() {
    let home = tempfile::tempdir().unwrap();
    let socket = format!("gan-tui-hup-{}", std::process::id());
    let (tmux, run, _) = start_dashboard(home.path(), &socket);
    // Paused: the trainer blocks on its command channel, the hardest case to wake.
    tmux.keys("p");
    tmux.wait_for(10, "PAUSED", |s| s.contains("PAUSED"));
    drop(tmux); // kill-server: the terminal hangs up
    wait_until(30, "the process to end", || !still_running(&run));
    assert!(run.join("checkpoints/latest.safetensors").is_file());
}
