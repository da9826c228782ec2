//! A progress line on a terminal for long runs over receipts (`allowly verify` of an export,
//! `allowly receipts export`): `verified 412,000 receipts (151,230/s)`, redrawn in place on stderr
//! a few times a second and erased at the end. Nothing is drawn when stderr is not a terminal, so
//! logs and pipes stay clean.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(250);

pub struct Progress {
    verb: &'static str,
    started: Instant,
    last_drawn: Option<Instant>,
    count: u64,
    on_terminal: bool,
}

impl Progress {
    /// A progress line for `verb` ("verified", "exported"), drawn only on a terminal.
    pub fn on_terminal(verb: &'static str) -> Progress {
        Progress {
            verb,
            started: Instant::now(),
            last_drawn: None,
            count: 0,
            on_terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Whether a line is drawn (stderr is a terminal).
    pub fn is_drawn(&self) -> bool {
        self.on_terminal
    }

    /// `count` receipts done so far.
    pub fn set(&mut self, count: u64) {
        self.count = count;
        if !self.on_terminal || self.last_drawn.is_some_and(|at| at.elapsed() < REDRAW_EVERY) {
            return;
        }
        // Not before a quarter of a second: a short run draws nothing at all.
        if self.last_drawn.is_none() && self.started.elapsed() < REDRAW_EVERY {
            return;
        }
        self.last_drawn = Some(Instant::now());
        let rate = self.count as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{} {} receipts ({}/s)", self.verb, grouped(self.count), grouped(rate as u64));
        let _ = err.flush();
    }

    /// Erases the line (the command's own output follows).
    pub fn finish(&mut self) {
        if self.last_drawn.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// `1234567` → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_thousands() {
        assert_eq!(super::grouped(0), "0");
        assert_eq!(super::grouped(999), "999");
        assert_eq!(super::grouped(1000), "1,000");
        assert_eq!(super::grouped(1_234_567), "1,234,567");
    }
}
