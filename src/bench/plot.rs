//! The sweep's plot, as a hand-written SVG: one panel per knob, its values evenly spaced along
//! x (they span orders of magnitude and may include 0, so neither a linear nor a log axis
//! fits), throughput on the left axis and p99 latency on the right.

use std::fmt::Write as _;

use super::sweep::Point;

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 250.0;
/// Margins of the plot area inside a panel: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (70.0, 60.0, 45.0, 45.0);
const THROUGHPUT_COLOR: &str = "#1f77b4";
const P99_COLOR: &str = "#d62728";

/// One panel: a knob's title (`key (what it means)`), its default, its measured points in
/// sweep order, and the throughput range of the default configuration's runs (drawn as a
/// band: a point inside it is not told apart from the default).
pub struct Panel {
    pub title: String,
    pub default: u64,
    pub points: Vec<Point>,
    pub band: Option<(f64, f64)>,
}

/// The whole SVG: panels two abreast, under `caption`.
pub fn svg(caption: &str, panels: &[Panel]) -> String {
    let columns = panels.len().clamp(1, 2);
    let rows = panels.len().div_ceil(2).max(1);
    // The caption's clauses (split at "; ") go on lines of their own: one line is wider than
    // the plot.
    let lines: Vec<&str> = caption.split("; ").collect();
    let head = 12.0 + 16.0 * lines.len() as f64;
    let (width, height) = (PANEL_W * columns as f64, head + PANEL_H * rows as f64);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="10" y="{}" font-size="13">{}</text>"#,
            20.0 + 16.0 * i as f64,
            escape(line)
        );
    }
    for (i, panel) in panels.iter().enumerate() {
        let x0 = PANEL_W * (i % 2) as f64;
        let y0 = head + PANEL_H * (i / 2) as f64;
        draw_panel(&mut out, x0, y0, panel);
    }
    out.push_str("</svg>\n");
    out
}

fn draw_panel(out: &mut String, x0: f64, y0: f64, panel: &Panel) {
    let (left, right, top, bottom) = MARGIN;
    let (px, py) = (x0 + left, y0 + top);
    let (w, h) = (PANEL_W - left - right, PANEL_H - top - bottom);
    // The key on one line and what it means on the next: together they are wider than a panel.
    let (key, meaning) = panel.title.split_once(" (").unwrap_or((&panel.title, ""));
    let meaning = meaning.strip_suffix(')').unwrap_or(meaning);
    let _ = writeln!(
        out,
        r##"<text x="{px}" y="{}" font-size="12" font-weight="bold">{}</text><text x="{px}" y="{}" fill="#555">{}</text>"##,
        py - 22.0,
        escape(key),
        py - 8.0,
        escape(meaning)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{px}" y="{py}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##
    );
    let n = panel.points.len().max(1);
    let x_at = |i: usize| px + w * (i as f64 + 0.5) / n as f64;
    let tp_max = nice_max(panel.points.iter().map(|p| p.records_per_s));
    let p99_max = nice_max(panel.points.iter().map(|p| p.p99_ms));
    let y_at = |v: f64, max: f64| py + h - h * (v / max);
    if let Some((low, high)) = panel.band {
        let (top, bottom) = (y_at(high.min(tp_max), tp_max), y_at(low.max(0.0), tp_max));
        let _ = writeln!(
            out,
            r#"<rect x="{px}" y="{top:.1}" width="{w}" height="{:.1}" fill="{THROUGHPUT_COLOR}" fill-opacity="0.12"/>"#,
            bottom - top
        );
    }
    // Axis ticks: 0, half and the top of each scale.
    for step in 0..=2 {
        let fraction = step as f64 / 2.0;
        let y = py + h - h * fraction;
        let _ = writeln!(
            out,
            r##"<line x1="{px}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end" fill="{THROUGHPUT_COLOR}">{:.0}</text><text x="{}" y="{}" fill="{P99_COLOR}">{:.1}</text>"##,
            px + w,
            px - 4.0,
            y + 4.0,
            tp_max * fraction,
            px + w + 4.0,
            y + 4.0,
            p99_max * fraction
        );
    }
    for (i, point) in panel.points.iter().enumerate() {
        let weight = if point.value == panel.default {
            "bold"
        } else {
            "normal"
        };
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-weight="{weight}">{}</text>"#,
            x_at(i),
            py + h + 14.0,
            point.value
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">value (bold: default)</text>"##,
        px + w / 2.0,
        py + h + 30.0
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" fill="{THROUGHPUT_COLOR}" transform="rotate(-90 {} {})">records/s</text><text x="{}" y="{}" text-anchor="middle" fill="{P99_COLOR}" transform="rotate(90 {} {})">p99 ms</text>"#,
        x0 + 14.0,
        py + h / 2.0,
        x0 + 14.0,
        py + h / 2.0,
        x0 + PANEL_W - 12.0,
        py + h / 2.0,
        x0 + PANEL_W - 12.0,
        py + h / 2.0
    );
    let series = |value: fn(&Point) -> f64, max: f64| -> String {
        panel
            .points
            .iter()
            .enumerate()
            .filter(|(_, p)| value(p).is_finite())
            .map(|(i, p)| format!("{:.1},{:.1}", x_at(i), y_at(value(p), max)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let throughput = series(|p| p.records_per_s, tp_max);
    let p99 = series(|p| p.p99_ms, p99_max);
    let _ = writeln!(
        out,
        r#"<polyline points="{throughput}" fill="none" stroke="{THROUGHPUT_COLOR}" stroke-width="2"/>"#
    );
    let _ = writeln!(
        out,
        r#"<polyline points="{p99}" fill="none" stroke="{P99_COLOR}" stroke-width="2" stroke-dasharray="5,3"/>"#
    );
    for point in throughput.split(' ').filter(|p| !p.is_empty()) {
        let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
        let _ = writeln!(
            out,
            r#"<circle cx="{x}" cy="{y}" r="3" fill="{THROUGHPUT_COLOR}"/>"#
        );
    }
}

/// A round upper bound for an axis: the maximum times 1.1, rounded up to 1, 1.5, 2, 3 or 5
/// × 10^k.
pub fn nice_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0, f64::max) * 1.1;
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    let step = [1.0, 1.5, 2.0, 3.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * magnitude >= max)
        .unwrap_or(10.0);
    step * magnitude
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_and_above_the_data() {
        assert_eq!(nice_max([9_000.0, 3_000.0].into_iter()), 10_000.0);
        assert_eq!(nice_max([12.0].into_iter()), 15.0);
        assert_eq!(nice_max([25.0].into_iter()), 30.0);
        assert_eq!(nice_max([0.4].into_iter()), 0.5);
        assert_eq!(nice_max([f64::NAN].into_iter()), 1.0);
        assert_eq!(nice_max(std::iter::empty()), 1.0);
    }

    #[test]
    fn one_panel_per_knob_with_both_series() {
        let points = vec![
            Point {
                value: 0,
                records_per_s: 1_000.0,
                p99_ms: 5.0,
            },
            Point {
                value: 50,
                records_per_s: 2_000.0,
                p99_ms: f64::NAN,
            },
        ];
        let panel = |title: &str| Panel {
            title: title.to_string(),
            default: 0,
            points: points.clone(),
            band: None,
        };
        let banded = Panel {
            band: Some((900.0, 1_100.0)),
            ..panel("c (linger (µs))")
        };
        let text = svg(
            "sweep <64 conns>; two lines",
            &[panel("a"), panel("b"), banded],
        );
        assert!(text.starts_with("<svg "));
        assert!(text.trim_end().ends_with("</svg>"));
        assert!(text.contains("sweep &lt;64 conns&gt;"));
        assert_eq!(text.matches("<polyline").count(), 6);
        // Two panels abreast, so three panels need two rows, under two lines of caption.
        assert!(text.contains(r#"height="544""#));
        assert!(text.contains(r#"y="36" font-size="13">two lines</text>"#));
        // A point without a p99 is left out of the p99 line only.
        assert_eq!(text.matches("<circle").count(), 6);
        assert!(text.contains(r#"font-weight="bold">0</text>"#));
        // The key in bold, its meaning below it with its own parentheses intact.
        assert!(text.contains(r#"font-weight="bold">c</text>"#));
        assert!(text.contains(r##"fill="#555">linger (µs)</text>"##));
        assert_eq!(text.matches(r#"fill-opacity="0.12""#).count(), 1);
    }
}
