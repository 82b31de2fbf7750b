//! `gan-tui watch [RUN_DIR]`: the dashboard on a run in another process, live through its
//! control socket while it runs, else a replay of its folder.

use std::path::Path;
use std::sync::mpsc;

use anyhow::Context;

use crate::config;
use crate::control::{replay, viewer};
use crate::dashboard::{self, app::App, app::WatchMode};
use crate::files::paths::Paths;
use crate::run::state::{Note, NoteKind};

/// Runs the viewer until the user leaves; returns the exit code.
pub fn run(run_dir: Option<&Path>, paths: &Paths) -> anyhow::Result<i32> {
    let run_dir = match run_dir {
        Some(dir) => dir.to_path_buf(),
        None => viewer::newest_run(&paths.runs_dir)?,
    };
    // The viewer draws as the user's config says; a bad config is no reason not to watch.
    let (theme, fps, config_warning) =
        match config::load(None, &paths.config_file, &config::Overrides::default()) {
            Ok(loaded) => (loaded.config.theme, loaded.config.fps, None),
            Err(e) => {
                let defaults = config::Config::default();
                (
                    defaults.theme,
                    defaults.fps,
                    Some(format!("{e}; drawing with the defaults")),
                )
            }
        };
    let mut app = App::new();
    let (note_tx, notes) = mpsc::channel();
    let (msgs, commands, _keep_open, live_notes);
    match viewer::connect(&run_dir) {
        Ok(stream) => {
            let (feed, _) = viewer::follow(stream, || replay::load(&run_dir))
                .with_context(|| format!("cannot follow the run in {}", run_dir.display()))?;
            app.set_watch(WatchMode::Live);
            msgs = feed.msgs;
            commands = feed.commands;
            live_notes = Some(feed.notes);
            _keep_open = None;
        }
        Err(_) => {
            let replay = replay::load(&run_dir)?;
            app.set_watch(WatchMode::Replay);
            let (msg_tx, msg_rx) = mpsc::channel();
            for msg in &replay.msgs {
                let _ = msg_tx.send(msg.clone());
            }
            let _ = note_tx.send(Note {
                kind: NoteKind::Warning,
                text: replay.ended_note(&run_dir),
            });
            msgs = msg_rx;
            // Held so the replayed run never looks disconnected.
            _keep_open = Some(msg_tx);
            commands = mpsc::channel().0;
            live_notes = None;
        }
    }
    if let Some(warning) = config_warning {
        let _ = note_tx.send(Note {
            kind: NoteKind::Warning,
            text: warning,
        });
    }
    // The live run's answers come after the notes above.
    let notes = match live_notes {
        Some(live) => {
            std::thread::Builder::new()
                .name("viewer-notes".into())
                .spawn(move || {
                    for note in live {
                        if note_tx.send(note).is_err() {
                            return;
                        }
                    }
                })
                .context("cannot start the viewer's thread")?;
            notes
        }
        None => notes,
    };
    let opts = dashboard::TuiOptions {
        fps,
        theme: &theme,
        themes_dir: &paths.themes_dir,
        stay_open_when_done: true,
        notes: Some(&notes),
    };
    dashboard::run(app, msgs, commands, &opts)?;
    Ok(0)
}
