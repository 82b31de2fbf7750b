//! gan-tui: trains a GAN on handwritten digits and shows it learning in the terminal.
//!
//! `run` wires the pieces: config, paths, data, the trainer thread and one front end.

pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod control;
pub mod dashboard;
pub mod data;
pub mod doctor;
pub mod eval;
pub mod files;
pub mod headless;
pub mod judge;
pub mod nn;
pub mod probe;
pub mod protocol;
pub mod resume;
pub mod run;
pub mod train;

use std::io::IsTerminal;
use std::sync::mpsc;

use anyhow::{Context, bail};

use cli::{Cli, CliCommand};
use commands::{bench, judge as judge_command, sample};
use config::Config;
use dashboard::theme::Theme;
use files::paths::{self, Paths};
use files::run_dir::RunDir;
use run::signals;
use run::state::Phase;

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let paths = Paths::from_env()?;
    if cli.train.print_paths {
        console::say(paths.describe().trim_end());
        return Ok(0);
    }
    match &cli.command {
        Some(CliCommand::Sample(args)) => {
            console::say(sample::run(args)?);
            return Ok(0);
        }
        Some(CliCommand::Eval(args)) => {
            let q = commands::eval::evaluate_checkpoint(
                &args.checkpoint,
                args.count as usize,
                args.seed,
            )?;
            console::say(if args.json {
                commands::eval::report_json(&args.checkpoint, &q)
            } else {
                commands::eval::report_text(&args.checkpoint, &q)
            });
            return Ok(0);
        }
        Some(CliCommand::Bench(args)) => {
            nn::threads::set(nn::threads::Threads::from_setting(args.threads as usize))?;
            let presets = args.preset.presets();
            let mut reports = Vec::new();
            for &preset in &presets {
                let report = bench::run(preset, args.steps as usize, args.batch_size as usize)?;
                if args.json {
                    console::say(report.json());
                } else if presets.len() == 1 {
                    console::say(report.text());
                }
                reports.push(report);
            }
            if !args.json && presets.len() > 1 {
                console::say(bench::table(&reports));
            }
            return Ok(0);
        }
        Some(CliCommand::Judge(cli::JudgeCommand::Train(a))) => {
            judge_command::train(a.epochs, a.seed, &a.out, &mut std::io::stdout())?;
            return Ok(0);
        }
        Some(CliCommand::Watch(args)) => {
            return commands::watch::run(args.run_dir.as_deref(), &paths);
        }
        None => {}
    }
    let headless = cli.train.no_tui || !std::io::stdout().is_terminal();
    let new_run_dir = |cfg: &Config| paths::new_run_dir(&paths.runs_dir, cfg.preset.name());
    let (cfg, run, resume) = match &cli.train.resume {
        Some(path) => {
            if cli.train.config.is_some() {
                bail!("--resume takes its settings from the checkpoint; drop --config");
            }
            let how = if cli.train.fork {
                resume::Continue::Fork
            } else {
                resume::Continue::Resume
            };
            let resume = resume::prepare(path, &cli.train.overrides, how, new_run_dir)?;
            // Check the data before touching the run folder.
            let data = data::load(resume.config.data_dir.as_deref(), data::Split::Train)?;
            let run = resume::open_run_dir(&resume)?;
            let cfg = resume.config.clone();
            (cfg, (run, data), Some((path.clone(), resume.checkpoint)))
        }
        None => {
            let loaded = config::load(
                cli.train.config.as_deref(),
                &paths.config_file,
                &cli.train.overrides,
            )?;
            let mut cfg = loaded.config;
            // A config copied from a fork's folder starts a new run, not a fork.
            cfg.forked_from = None;
            cfg.forked_at_step = 0;
            let data = data::load(cfg.data_dir.as_deref(), data::Split::Train)?;
            // The run's config.toml names its own folder, so it says where this run lives.
            let run_root = match &cfg.run_dir {
                Some(dir) => dir.clone(),
                None => new_run_dir(&cfg),
            };
            cfg.run_dir = Some(run_root.clone());
            let run = RunDir::start_new(&run_root, &cfg.to_toml())?;
            (cfg, (run, data), None)
        }
    };
    let (run, data) = run;
    nn::threads::set(nn::threads::Threads::from_setting(cfg.threads))?;

    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (link, msg_tx, msg_rx) = control::RunLink::open(run.root(), cfg.control, &cmd_tx)
        .context("cannot start the thread between the trainer and the front end")?;
    let job = train::TrainJob {
        config_toml: cfg.to_toml(),
        config: cfg.clone(),
        data,
        run_dir: run,
        resume,
        builder: None,
    };
    let trainer = train::spawn(job, msg_tx, cmd_rx).context("cannot start the trainer thread")?;
    let code = if headless {
        // No dashboard to colour, but a bad theme setting is still worth a word.
        if let (_, Some(warning)) = Theme::load(&cfg.theme, &paths.themes_dir) {
            console::warn(format!("warning: {warning}"));
        }
        let result = headless::run(msg_rx, cmd_tx, cfg.on_write_error, Some(&link.log));
        let _ = trainer.join();
        link.close();
        let outcome = result?;
        outcome.signal.map_or(0, signals::exit_code)
    } else {
        run_dashboard(&cfg, &paths, msg_rx, cmd_tx, trainer, link)?
    };
    Ok(code)
}

/// Runs the dashboard until the user quits (or the run fails), then prints the summary.
fn run_dashboard(
    cfg: &Config,
    paths: &Paths,
    msg_rx: mpsc::Receiver<protocol::TrainMsg>,
    cmd_tx: mpsc::Sender<protocol::Command>,
    trainer: std::thread::JoinHandle<()>,
    link: control::RunLink,
) -> anyhow::Result<i32> {
    // The word about the control socket and the viewers' commands show on the status line.
    let opts = dashboard::TuiOptions {
        fps: cfg.fps,
        theme: &cfg.theme,
        themes_dir: &paths.themes_dir,
        stay_open_when_done: true,
        notes: Some(&link.log),
    };
    let mut app = dashboard::app::App::new();
    if let (Some(parent), Some(steps)) = (&cfg.forked_from, resume::parent_steps(cfg)) {
        let name = parent.display().to_string();
        app.set_parent(dashboard::app::ParentCurves::new(
            name,
            cfg.forked_at_step,
            steps,
        ));
    }
    let result = dashboard::run(app, msg_rx, cmd_tx, &opts);
    // The dashboard asked the trainer to stop (or it finished); wait for its checkpoint.
    let _ = trainer.join();
    link.close();
    let app = result?;
    // The terminal may be gone (a hang-up); the summary is then simply not shown.
    console::say(app.summary());
    match app.run().phase() {
        Phase::Failed(error) => bail!("{error}"),
        Phase::Finished(protocol::FinishReason::Diverged) => bail!(
            "training diverged; nothing after the last good checkpoint was saved{}",
            app.run()
                .last_checkpoint()
                .map_or(String::new(), |p| format!(": {}", p.display()))
        ),
        _ => {}
    }
    Ok(app.signalled().map_or(0, signals::exit_code))
}
