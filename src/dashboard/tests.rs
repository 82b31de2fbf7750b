//! Tests of the event loop, driven by scripted events over a test backend.

use super::*;
use crate::dashboard::widgets::tests::info;
use crate::protocol::{FinishReason, SampleGrid, StepStats, TrainMsg};
use crate::run::state::Phase;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread;

/// Key events handed out one per call, then silence (sleeping like a real poll would).
struct Script {
    events: VecDeque<Event>,
    polls: u64,
}

impl Script {
    fn new(keys: &[char]) -> Script {
        Script {
            events: keys
                .iter()
                .map(|&c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
                .collect(),
            polls: 0,
        }
    }
}

impl EventSource for Script {
    fn next_event(&mut self, timeout: Duration) -> io::Result<Option<Event>> {
        self.polls += 1;
        match self.events.pop_front() {
            Some(event) => Ok(Some(event)),
            None => {
                thread::sleep(timeout);
                Ok(None)
            }
        }
    }
}

/// A test backend that counts the frames drawn, so another thread can watch the loop's progress.
struct CountingBackend {
    inner: TestBackend,
    draws: Arc<AtomicUsize>,
}

impl Backend for CountingBackend {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.draws.fetch_add(1, Ordering::SeqCst);
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<ratatui::layout::Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<ratatui::layout::Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<ratatui::backend::WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

fn stats(step: u64) -> StepStats {
    StepStats {
        step,
        epoch: 1,
        batch: step,
        d_loss: 0.5 + (step % 7) as f32 / 10.0,
        g_loss: 1.0,
        d_real: 0.6,
        d_fake: 0.4,
        lr: 2e-4,
        steps_per_s: 50.0,
        elapsed_s: step as f64 / 50.0,
        g_grad_norm: Some(0.5),
        d_grad_norm: Some(0.25),
    }
}

fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let area = buffer.area;
    (area.top()..area.bottom())
        .map(|y| {
            (area.left()..area.right())
                .map(|x| buffer.cell((x, y)).map_or(" ", |c| c.symbol()))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A stand-in trainer: announces the run, then on Stop saves and finishes, like the real one.
fn fake_trainer(
    msg_tx: Sender<TrainMsg>,
    cmd_rx: Receiver<Command>,
) -> thread::JoinHandle<Vec<Command>> {
    thread::spawn(move || {
        let mut seen = Vec::new();
        let _ = msg_tx.send(TrainMsg::Started(info()));
        for step in 1..=20 {
            let _ = msg_tx.send(TrainMsg::Step(stats(step)));
        }
        let _ = msg_tx.send(TrainMsg::Samples(SampleGrid {
            step: 20,
            width: 28,
            height: 28,
            pixels: vec![128; 4 * 784],
            labels: None,
        }));
        while let Ok(command) = cmd_rx.recv_timeout(Duration::from_secs(10)) {
            seen.push(command);
            match command {
                Command::Pause => {
                    let _ = msg_tx.send(TrainMsg::Paused { step: 20 });
                }
                Command::Stop => {
                    thread::sleep(Duration::from_millis(50));
                    let _ = msg_tx.send(TrainMsg::Finished {
                        reason: FinishReason::Stopped,
                        step: 20,
                        last_checkpoint: Some(PathBuf::from("/runs/test/ckpt.safetensors")),
                    });
                    break;
                }
                _ => {}
            }
        }
        seen
    })
}

#[test]
fn quit_stops_the_trainer_and_waits_for_it() {
    let (msg_tx, msg_rx) = mpsc::channel();
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let trainer = fake_trainer(msg_tx, cmd_rx);
    // Let the first messages land before the keys are read.
    thread::sleep(Duration::from_millis(30));
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).ok();
    let Some(terminal) = terminal.as_mut() else {
        panic!("test terminal");
    };
    let mut script = Script::new(&['p', 'q']);
    let flag = AtomicUsize::new(0);
    let result = event_loop(
        terminal,
        &mut script,
        App::new(),
        &ThemeSet::default(),
        Link {
            msgs: &msg_rx,
            commands: &cmd_tx,
            notes: None,
        },
        frame_time(100),
        &flag,
    );
    let (app, stats) = result
        .into_result()
        .unwrap_or_else(|e| panic!("loop failed: {e}"));
    let seen = trainer.join().unwrap_or_default();
    assert_eq!(seen, vec![Command::Pause, Command::Stop]);
    assert_eq!(app.run().phase(), &Phase::Finished(FinishReason::Stopped));
    assert_eq!(
        app.run().last_checkpoint(),
        Some(&PathBuf::from("/runs/test/ckpt.safetensors"))
    );
    assert!(stats.frames >= 1);
    assert!(app.summary().contains("/runs/test"));
    // The last frame drawn was the stopping notice, waiting for the trainer's answer.
    assert!(
        screen(terminal).contains("stopping: saving checkpoint"),
        "{}",
        screen(terminal)
    );
}

#[test]
fn a_signal_quits_like_the_q_key() {
    let (msg_tx, msg_rx) = mpsc::channel();
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let trainer = fake_trainer(msg_tx, cmd_rx);
    let mut terminal = Terminal::new(TestBackend::new(40, 10)).ok();
    let Some(terminal) = terminal.as_mut() else {
        panic!("test terminal");
    };
    let flag = AtomicUsize::new(15);
    let result = event_loop(
        terminal,
        &mut Script::new(&[]),
        App::new(),
        &ThemeSet::default(),
        Link {
            msgs: &msg_rx,
            commands: &cmd_tx,
            notes: None,
        },
        frame_time(100),
        &flag,
    );
    let (app, _) = result
        .into_result()
        .unwrap_or_else(|e| panic!("loop failed: {e}"));
    assert_eq!(trainer.join().unwrap_or_default(), vec![Command::Stop]);
    assert_eq!(app.run().phase(), &Phase::Finished(FinishReason::Stopped));
    assert_eq!(app.signalled(), Some(15));
}

#[test]
fn a_vanished_trainer_ends_the_loop_with_an_error_state() {
    let (msg_tx, msg_rx) = mpsc::channel::<TrainMsg>();
    let (cmd_tx, _cmd_rx) = mpsc::channel();
    let _ = msg_tx.send(TrainMsg::Started(info()));
    drop(msg_tx);
    let mut terminal = Terminal::new(TestBackend::new(1, 1)).ok();
    let Some(terminal) = terminal.as_mut() else {
        panic!("test terminal");
    };
    let result = event_loop(
        terminal,
        &mut Script::new(&[]),
        App::new(),
        &ThemeSet::default(),
        Link {
            msgs: &msg_rx,
            commands: &cmd_tx,
            notes: None,
        },
        frame_time(100),
        &AtomicUsize::new(0),
    );
    let (app, _) = result
        .into_result()
        .unwrap_or_else(|e| panic!("loop failed: {e}"));
    assert!(matches!(app.run().phase(), Phase::Failed(_)));
}

#[test]
fn drawing_is_paced_however_many_messages_arrive() {
    // Bounded, so the flood cannot run far ahead of a loop that starts late.
    let (msg_tx, msg_rx) = mpsc::sync_channel(4 * MAX_MESSAGES_PER_FRAME);
    let (cmd_tx, _cmd_rx) = mpsc::channel();
    let draws = Arc::new(AtomicUsize::new(0));
    let watched = Arc::clone(&draws);
    // The flood lasts at least 300 ms and until the loop has drawn twice, so a loop that starts
    // late still meets it; a loop that never draws during a flood lets it run to its 60 s cap.
    let flood = thread::spawn(move || {
        let _ = msg_tx.send(TrainMsg::Started(info()));
        let start = Instant::now();
        let mut step = 0;
        let drawn_twice = || watched.load(Ordering::SeqCst) >= 2;
        while start.elapsed() < Duration::from_millis(300)
            || (!drawn_twice() && start.elapsed() < Duration::from_secs(60))
        {
            step += 1;
            if msg_tx.send(TrainMsg::Step(stats(step))).is_err() {
                break;
            }
        }
        let _ = msg_tx.send(TrainMsg::Error("flood over".to_string()));
        step
    });
    let backend = CountingBackend {
        inner: TestBackend::new(120, 40),
        draws,
    };
    let mut terminal = Terminal::new(backend).ok();
    let Some(terminal) = terminal.as_mut() else {
        panic!("test terminal");
    };
    let started = Instant::now();
    let frame = frame_time(20);
    let result = event_loop(
        terminal,
        &mut Script::new(&[]),
        App::new(),
        &ThemeSet::default(),
        Link {
            msgs: &msg_rx,
            commands: &cmd_tx,
            notes: None,
        },
        frame,
        &AtomicUsize::new(0),
    );
    let elapsed = started.elapsed();
    let (app, stats) = result
        .into_result()
        .unwrap_or_else(|e| panic!("loop failed: {e}"));
    let sent = flood.join().unwrap_or(0);
    assert!(sent > 1000, "the flood was only {sent} messages");
    let budget = elapsed.as_millis() / frame.as_millis() + 2;
    assert!(
        u128::from(stats.frames) <= budget,
        "{} frames in {elapsed:?} at 20 fps",
        stats.frames
    );
    assert!(stats.frames >= 2, "{} frames", stats.frames);
    assert_eq!(app.run().phase(), &Phase::Failed("flood over".to_string()));
    assert_eq!(
        app.run()
            .history(crate::run::history::Series::DLoss)
            .full
            .total(),
        sent
    );
}

#[test]
fn frame_time_is_clamped() {
    assert_eq!(frame_time(0), Duration::from_secs(1));
    assert_eq!(frame_time(20), Duration::from_millis(50));
    assert_eq!(frame_time(10_000), Duration::from_secs(1) / MAX_FPS);
}
