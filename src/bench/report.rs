//! What `raftlog bench` prints: a progress line on stderr while a run goes, and the table of
//! results at the end.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::stats::Summary;

/// The progress line: completed requests per second over the last tick, rewritten in place
/// on a terminal and one line per tick otherwise (so a log file stays readable).
pub struct Progress {
    label: String,
    total: Duration,
    last_completed: u64,
    last_elapsed: Duration,
    in_place: bool,
    enabled: bool,
}

impl Progress {
    /// A progress line for a run named `label` lasting `total` (warm-up included).
    pub fn new(label: impl Into<String>, total: Duration, enabled: bool) -> Self {
        Self {
            label: label.into(),
            total,
            last_completed: 0,
            last_elapsed: Duration::ZERO,
            in_place: std::io::stderr().is_terminal(),
            enabled,
        }
    }

    /// Called once a second with the time since the start and all requests completed.
    pub fn tick(&mut self, elapsed: Duration, completed: u64) {
        let rate = rate(
            completed - self.last_completed,
            elapsed.saturating_sub(self.last_elapsed),
        );
        self.last_completed = completed;
        self.last_elapsed = elapsed;
        if !self.enabled {
            return;
        }
        let line = progress_line(&self.label, elapsed, self.total, rate);
        let mut stderr = std::io::stderr().lock();
        let _ = if self.in_place {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
    }

    /// Ends the line, if it was being rewritten in place.
    pub fn finish(&self) {
        if self.enabled && self.in_place {
            eprintln!();
        }
    }
}

fn rate(count: u64, over: Duration) -> f64 {
    count as f64 / over.as_secs_f64().max(1e-9)
}

/// `label  [#####.....]  7/15 s  12,345 req/s`.
pub fn progress_line(label: &str, elapsed: Duration, total: Duration, rate: f64) -> String {
    const WIDTH: usize = 20;
    let fraction = (elapsed.as_secs_f64() / total.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
    let filled = (fraction * WIDTH as f64).round() as usize;
    format!(
        "{label}  [{}{}]  {}/{} s  {} req/s",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        elapsed.as_secs(),
        total.as_secs(),
        thousands(rate.round() as u64)
    )
}

/// The results table: one header row and one row per run.
pub fn table(rows: &[(String, Summary)]) -> String {
    let header = [
        "run",
        "requests/s",
        "records/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for (label, summary) in rows {
        cells.push(vec![
            label.clone(),
            thousands(summary.requests_per_s.round() as u64),
            thousands(summary.records_per_s.round() as u64),
            format!("{:.2}", summary.mb_per_s),
            format!("{:.2}", summary.p50_ms),
            format!("{:.2}", summary.p99_ms),
            format!("{:.2}", summary.p999_ms),
            summary.errors.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| cells.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            // The label left-aligned, the numbers right-aligned.
            let _ = if column == 0 {
                write!(line, "{cell:<w$}", w = widths[column])
            } else {
                write!(line, "  {cell:>w$}", w = widths[column])
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
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
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn progress_line_shows_the_fraction_done_and_the_rate() {
        let line = progress_line(
            "write",
            Duration::from_secs(5),
            Duration::from_secs(10),
            1234.4,
        );
        assert_eq!(line, "write  [##########..........]  5/10 s  1,234 req/s");
    }

    #[test]
    fn table_aligns_columns() {
        let summary = Summary {
            requests: 10,
            errors: 0,
            requests_per_s: 12_345.0,
            records_per_s: 12_345.0,
            mb_per_s: 3.16,
            p50_ms: 4.9,
            p99_ms: 9.81,
            p999_ms: 12.1,
        };
        let text = table(&[("write 64 conns".to_string(), summary)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("run "));
        assert!(lines[1].starts_with("write 64 conns"));
        assert!(lines[1].contains("12,345"));
        assert!(lines[1].ends_with("12.10       0"));
        // Every column ends where its header ends.
        assert_eq!(lines[0].len(), lines[1].len());
    }
}
