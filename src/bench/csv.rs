//! The sweep's CSV: one row per measured point, with the load it ran under, so that the file
//! says on its own what it measured.

use std::fmt::Write as _;

use super::stats::Summary;

/// The load every point of a sweep ran under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadShape {
    pub connections: usize,
    pub value_bytes: usize,
    pub records_per_request: usize,
    pub duration_s: u64,
}

/// One measured run: `key` set to `value`, every other knob at its default; `run` counts the
/// repeats of that point from 1.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    pub key: String,
    pub value: u64,
    pub run: usize,
    pub summary: Summary,
}

pub const HEADER: &str = "knob,value,run,connections,value_bytes,records_per_request,duration_s,\
requests,errors,requests_per_s,records_per_s,mb_per_s,p50_ms,p99_ms,p999_ms";

/// The CSV text of `rows`, header first. Numbers only and dotted keys, so nothing needs quoting.
pub fn to_csv(shape: &LoadShape, rows: &[SweepRow]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    for row in rows {
        let s = &row.summary;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.1},{:.1},{:.3},{:.3},{:.3},{:.3}",
            row.key,
            row.value,
            row.run,
            shape.connections,
            shape.value_bytes,
            shape.records_per_request,
            shape.duration_s,
            s.requests,
            s.errors,
            s.requests_per_s,
            s.records_per_s,
            s.mb_per_s,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_point_under_the_header() {
        let shape = LoadShape {
            connections: 64,
            value_bytes: 256,
            records_per_request: 1,
            duration_s: 5,
        };
        let summary = Summary {
            requests: 50_000,
            errors: 1,
            requests_per_s: 10_000.0,
            records_per_s: 10_000.0,
            mb_per_s: 2.56,
            p50_ms: 6.0,
            p99_ms: 12.5,
            p999_ms: 20.25,
        };
        let rows = [SweepRow {
            key: "batching.proposal_linger_us".to_string(),
            value: 50,
            run: 2,
            summary,
        }];
        let text = to_csv(&shape, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(
            lines[1],
            "batching.proposal_linger_us,50,2,64,256,1,5,50000,1,10000.0,10000.0,2.560,6.000,12.500,20.250"
        );
        assert_eq!(
            lines[0].split(',').count(),
            lines[1].split(',').count(),
            "every row has every column"
        );
    }
}
