//! `gan-tui judge train`: retrains the judge, prints its progress and figures, writes the weights.

use std::io::Write;
use std::path::Path;

use crate::judge::{FLOOR_DIGITS, Judge, JudgeError, TrainEvent, train_judge};

/// Where the program's own copy lives in the source tree; the weights there are compiled in.
pub const SHIPPED_PATH: &str = "data/judge.safetensors";

/// Trains with `epochs` and `seed`, writes the weights to `out`, and reports to `say` as it
/// goes. Lines that cannot be printed (a closed pipe) do not stop the training.
pub fn train(epochs: u32, seed: u64, out: &Path, say: &mut impl Write) -> Result<(), JudgeError> {
    let _ = writeln!(
        say,
        "training the judge on MNIST's 60,000 training digits: {epochs} epoch{}, seed {seed}",
        if epochs == 1 { "" } else { "s" }
    );
    let trained = train_judge(epochs, seed, |event| {
        let _ = match *event {
            TrainEvent::Batches {
                epoch,
                epochs,
                done,
                total,
                loss,
                accuracy,
            } => writeln!(
                say,
                "epoch {epoch}/{epochs}  batch {done}/{total}  loss {loss:.4}  train accuracy {:.2}%",
                100.0 * accuracy
            ),
            TrainEvent::Epoch {
                epoch,
                epochs,
                seconds,
                test_accuracy,
            } => match test_accuracy {
                Some(a) => writeln!(
                    say,
                    "epoch {epoch}/{epochs} done in {seconds:.1} s; test accuracy {:.2}%",
                    100.0 * a
                ),
                None => writeln!(say, "epoch {epoch}/{epochs} done in {seconds:.1} s"),
            },
            TrainEvent::Testing => writeln!(say, "classifying the 10,000 test digits"),
        };
    })?;
    trained.judge.save(out)?;
    let _ = writeln!(
        say,
        "test accuracy {:.2}% ({:.0} s in all); weights written to {}",
        100.0 * trained.test_accuracy,
        trained.seconds,
        out.display()
    );
    report_floor(&trained.judge, say)?;
    let _ = writeln!(
        say,
        "to ship these weights, copy them over {SHIPPED_PATH} in the source tree and rebuild"
    );
    Ok(())
}

/// Prints what real digits score: the bar generated digits are measured against.
pub fn report_floor(judge: &Judge, say: &mut impl Write) -> Result<(), JudgeError> {
    let floor = judge.real_floor(FLOOR_DIGITS)?;
    let _ = writeln!(
        say,
        "real-digit floor ({FLOOR_DIGITS} training digits against the test digits): {floor}"
    );
    Ok(())
}
