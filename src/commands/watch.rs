//! `gan-tui watch [RUN_DIR]`: the dashboard on a run in another process, live through its
//! control socket while it runs, else a replay of its folder.

use std::path::Path;
use std::sync::mpsc;

use anyhow::Context;

use crate::config;
use crate::control::{replay, viewer};
use crate::dashboard::{self, app::App, app::WatchMode};
use crate::files::paths::Paths;
use crate::run::state::{Feed, Note, NoteKind};

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
    let config_note = config_warning.map(|text| Note {
        kind: NoteKind::Warning,
        text,
    });
    // One channel in the order things happened: a command's answer before the news it causes.
    let (feed_tx, feed) = mpsc::channel::<Feed>();
    let (commands, notes, _keep_open);
    match viewer::connect(&run_dir) {
        Ok(stream) => {
            // The folder's epoch grids go to the filmstrip before the run's own.
            let mut epoch_grids = Vec::new();
            let catch_up = || {
                let mut replay = replay::load(&run_dir)?;
                epoch_grids = std::mem::take(&mut replay.grids);
                Ok(replay)
            };
            let live = viewer::follow(stream, catch_up, feed_tx.clone())
                .with_context(|| format!("cannot follow the run in {}", run_dir.display()))?;
            for (epoch, grid) in epoch_grids {
                app.add_epoch_grid(epoch, grid);
            }
            app.set_watch(WatchMode::Live);
            if let Some(note) = config_note {
                let _ = feed_tx.send(Feed::Note(note));
            }
            // Only the viewer's reader holds the channel now: it closes when the run goes away.
            drop(feed_tx);
            commands = live.commands;
            notes = Some(live.notes);
            _keep_open = None;
        }
        Err(_) => {
            let mut replay = replay::load(&run_dir)?;
            app.set_watch(WatchMode::Replay);
            for (epoch, grid) in std::mem::take(&mut replay.grids) {
                app.add_epoch_grid(epoch, grid);
            }
            for msg in &replay.msgs {
                let _ = feed_tx.send(Feed::Msg(msg.clone()));
            }
            let ended = Note {
                kind: NoteKind::Warning,
                text: replay.ended_note(&run_dir),
            };
            for note in std::iter::once(ended).chain(config_note) {
                let _ = feed_tx.send(Feed::Note(note));
            }
            // Held so the replayed run never looks disconnected.
            _keep_open = Some(feed_tx);
            commands = mpsc::channel().0;
            notes = None;
        }
    }
    let opts = dashboard::TuiOptions {
        fps,
        theme: &theme,
        themes_dir: &paths.themes_dir,
        stay_open_when_done: true,
        notes: notes.as_ref(),
    };
    dashboard::run(app, feed, commands, &opts)?;
    Ok(0)
}
