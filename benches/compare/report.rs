//! What the rounds add up to, and the table printed at the end.

use crate::CONTENDERS;
use crate::measure::Outcome;
use crate::settings::{WORKLOADS, Workload};

#[derive(Default)]
pub struct Totals {
    samples_ns: Vec<u64>,
    /// Per round: rate (pipelined) or p50 (ping-pong, large).
    per_round: Vec<f64>,
    messages: u64,
    allocs: Option<u64>,
    counted_messages: u64,
    cpu_ns: u64,
    pub failures: Vec<String>,
}

impl Totals {
    pub fn add(&mut self, workload: Workload, mut outcome: Outcome) {
        if let Some(failure) = outcome.failure.take() {
            self.failures.push(failure);
            return;
        }
        match workload {
            Workload::Pipelined if outcome.elapsed_ns > 0 => self
                .per_round
                .push(outcome.messages as f64 / (outcome.elapsed_ns as f64 * 1e-9)),
            Workload::Pipelined => {}
            _ => {
                let mut round = outcome.samples_ns.clone();
                round.sort_unstable();
                if !round.is_empty() {
                    self.per_round.push(percentile(&round, 0.5));
                }
            }
        }
        self.samples_ns.append(&mut outcome.samples_ns);
        self.messages += outcome.messages;
        self.cpu_ns += outcome.cpu_ns;
        if let Some(allocs) = outcome.allocs {
            *self.allocs.get_or_insert(0) += allocs;
            self.counted_messages += outcome.messages;
        }
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in microseconds.
pub fn percentile(sorted_ns: &[u64], q: f64) -> f64 {
    let rank = ((sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, sorted_ns.len());
    sorted_ns[rank - 1] as f64 / 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// One line of the table: a figure per contender for one measure.
struct Measure {
    label: &'static str,
    unit: &'static str,
    workload: Workload,
    figure: fn(&Totals) -> Option<f64>,
    spread: bool,
}

fn sorted(totals: &Totals) -> Vec<u64> {
    let mut s = totals.samples_ns.clone();
    s.sort_unstable();
    s
}

const MEASURES: [Measure; 4] = [
    Measure {
        label: "ping-pong p50",
        unit: "µs",
        workload: Workload::PingPong,
        figure: |t| (!t.samples_ns.is_empty()).then(|| percentile(&sorted(t), 0.50)),
        spread: true,
    },
    Measure {
        label: "ping-pong p99",
        unit: "µs",
        workload: Workload::PingPong,
        figure: |t| (!t.samples_ns.is_empty()).then(|| percentile(&sorted(t), 0.99)),
        spread: false,
    },
    Measure {
        label: "pipelined, 64 in flight",
        unit: "msg/s",
        workload: Workload::Pipelined,
        figure: |t| (!t.per_round.is_empty()).then(|| median(&t.per_round)),
        spread: true,
    },
    Measure {
        label: "1 MiB round trip p50",
        unit: "µs",
        workload: Workload::Large,
        figure: |t| (!t.samples_ns.is_empty()).then(|| percentile(&sorted(t), 0.50)),
        spread: true,
    },
];

fn format_figure(value: f64, unit: &str) -> String {
    if unit == "msg/s" {
        format!("{value:>9.0} {unit}")
    } else {
        format!("{value:>9.1} {unit}")
    }
}

pub fn print_table(totals: &[[Totals; 3]; 3], counting: bool, workloads: &[Workload]) {
    println!();
    println!(
        "| {:<23} | {:<18} | {:>15} | {:>7} | {:>7} | {:>10} | {:>11} | notes",
        "workload", "contender", "figure", "÷ raw", "÷ tokio", "allocs/msg", "CPU µs/msg"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|------",
        "-".repeat(25),
        "-".repeat(20),
        "-".repeat(17),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(12),
        "-".repeat(13)
    );
    for measure in MEASURES.iter().filter(|m| workloads.contains(&m.workload)) {
        let w = WORKLOADS
            .iter()
            .position(|&w| w == measure.workload)
            .unwrap();
        let figures: Vec<Option<f64>> = (0..3).map(|c| (measure.figure)(&totals[c][w])).collect();
        for (c, contender) in CONTENDERS.iter().enumerate() {
            let t = &totals[c][w];
            let ratio = |reference: Option<f64>| match (figures[c], reference) {
                (Some(v), Some(r)) if r > 0.0 => format!("{:.3}", v / r),
                _ => "—".to_string(),
            };
            let allocs = match (counting, t.allocs) {
                (false, _) => "n/a".to_string(),
                (true, Some(a)) if t.counted_messages > 0 => {
                    format!("{:.2}", a as f64 / t.counted_messages as f64)
                }
                _ => "—".to_string(),
            };
            let cpu = if t.messages > 0 {
                format!("{:.2}", t.cpu_ns as f64 / 1e3 / t.messages as f64)
            } else {
                "—".to_string()
            };
            let mut notes = Vec::new();
            if let Some(first) = t.failures.first() {
                notes.push(format!(
                    "{} of {} rounds: {first}",
                    t.failures.len(),
                    t.failures.len() + t.per_round.len()
                ));
            }
            if measure.spread && t.per_round.len() > 1 {
                let min = t.per_round.iter().copied().fold(f64::INFINITY, f64::min);
                let max = t.per_round.iter().copied().fold(0.0, f64::max);
                let kind = if measure.unit == "msg/s" {
                    "rate"
                } else {
                    "p50"
                };
                let digits = if measure.unit == "msg/s" { 0 } else { 1 };
                notes.push(format!("per-round {kind} {min:.digits$}–{max:.digits$}"));
            }
            let figure =
                figures[c].map_or_else(|| "failed".to_string(), |v| format_figure(v, measure.unit));
            println!(
                "| {:<23} | {:<18} | {:>15} | {:>7} | {:>7} | {:>10} | {:>11} | {}",
                measure.label,
                contender.name(),
                figure,
                ratio(figures[0]),
                ratio(figures[2]),
                allocs,
                cpu,
                notes.join("; ")
            );
        }
    }
    println!();
    println!(
        "Ratios are this row's figure divided by the raw sys (÷ raw) or tokio (÷ tokio) row's: \
         below 1 is faster for latencies, above 1 is faster for msg/s."
    );
    println!(
        "allocs/msg: malloc/calloc/realloc/strdup/strndup/posix_memalign/aligned_alloc calls \
         of the whole process (Rust and C, all threads) during the measured part, per round trip."
    );
    println!(
        "CPU µs/msg: user + system CPU time of the host process (all threads; not the worker) \
         during the measured part, per round trip."
    );
}
