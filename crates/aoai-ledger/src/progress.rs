//! The ingest progress bar on stderr: bytes read of the total, events per
//! second, calls written and dead letters. Hidden when stderr is not a
//! terminal or with `--quiet`.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ledger_pipeline::{ByteProgress, Observer, Summary};

pub struct Bar {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Bar {
    /// A bar for `total` bytes (a spinner when unknown, as for stdin), or
    /// nothing when `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool, total: Option<u64>) -> Bar {
        let shown = !quiet && std::io::stderr().is_terminal();
        let bar = shown.then(|| {
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{bar:20} {bytes}/{total_bytes} {msg}"
            } else {
                "{spinner} {bytes} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Bar {
            bar,
            started: Instant::now(),
        }
    }

    /// Clears the bar; the summary line follows on stdout.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Bar {
    fn progress(&mut self, input: ByteProgress, so_far: &Summary) {
        let Some(bar) = &self.bar else { return };
        bar.set_position(input.read);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{:.0} events/s, {} calls, {} dead letters",
            so_far.events as f64 / secs,
            so_far.calls_written,
            so_far.dead_letters_written
        ));
    }
}

/// Rows written by a long export, on stderr: a spinner with the count.
/// Shown only on a terminal, and only when the rows do not go to it.
pub struct RowsBar {
    bar: Option<ProgressBar>,
}

impl RowsBar {
    pub fn new(to_terminal: bool) -> RowsBar {
        let shown = !to_terminal && std::io::stderr().is_terminal();
        let bar = shown.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} rows written") {
                bar.set_style(style);
            }
            bar
        });
        RowsBar { bar }
    }

    pub fn add(&self, rows: usize) {
        if let Some(b) = &self.bar {
            b.inc(rows as u64);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
