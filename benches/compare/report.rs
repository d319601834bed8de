//! What the rounds add up to, and the table printed at the end.

use crate::CONTENDERS;
use crate::measure::Outcome;
use crate::settings::{WORKLOADS, Workload};

#[derive(Default)]
pub struct Totals {
    samples_ns: Vec<u64>,
    /// Per round: rate (pipelined, batches) or p50 (ping-pong, large).
    per_round: Vec<f64>,
    /// Per round: host CPU µs per message.
    cpu_per_round: Vec<f64>,
    allocs: Option<u64>,
    counted_messages: u64,
    pub failures: Vec<String>,
}

impl Totals {
    pub fn add(&mut self, workload: Workload, mut outcome: Outcome) {
        if let Some(failure) = outcome.failure.take() {
            self.failures.push(failure);
            return;
        }
        match workload {
            Workload::Pipelined | Workload::Batches if outcome.elapsed_ns > 0 => self
                .per_round
                .push(outcome.messages as f64 / (outcome.elapsed_ns as f64 * 1e-9)),
            Workload::Pipelined | Workload::Batches => {}
            _ => {
                let mut round = outcome.samples_ns.clone();
                round.sort_unstable();
                if !round.is_empty() {
                    self.per_round.push(percentile(&round, 0.5));
                }
            }
        }
        if outcome.messages > 0 {
            self.cpu_per_round
                .push(outcome.cpu_ns as f64 / 1e3 / outcome.messages as f64);
        }
        self.samples_ns.append(&mut outcome.samples_ns);
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
    /// The workload whose raw sys figure `÷ raw` divides by: this one's, or (batches)
    /// raw's one message per call.
    reference: Workload,
    /// The figure: the median over rounds of each round's (`true`), or over all samples.
    per_round: bool,
    /// The percentile of the samples, for a figure over all of them.
    quantile: f64,
}

const MEASURES: [Measure; 5] = [
    Measure {
        label: "ping-pong p50",
        unit: "µs",
        workload: Workload::PingPong,
        reference: Workload::PingPong,
        per_round: true,
        quantile: 0.5,
    },
    Measure {
        label: "ping-pong p99",
        unit: "µs",
        workload: Workload::PingPong,
        reference: Workload::PingPong,
        per_round: false,
        quantile: 0.99,
    },
    Measure {
        label: "pipelined, 64 in flight",
        unit: "msg/s",
        workload: Workload::Pipelined,
        reference: Workload::Pipelined,
        per_round: true,
        quantile: 0.5,
    },
    Measure {
        label: "the same, 16 per batch",
        unit: "msg/s",
        workload: Workload::Batches,
        reference: Workload::Pipelined,
        per_round: true,
        quantile: 0.5,
    },
    Measure {
        label: "1 MiB round trip p50",
        unit: "µs",
        workload: Workload::Large,
        reference: Workload::Large,
        per_round: true,
        quantile: 0.5,
    },
];

impl Measure {
    fn figure(&self, t: &Totals) -> Option<f64> {
        if self.per_round {
            return (!t.per_round.is_empty()).then(|| median(&t.per_round));
        }
        let mut sorted = t.samples_ns.clone();
        sorted.sort_unstable();
        (!sorted.is_empty()).then(|| percentile(&sorted, self.quantile))
    }
}

fn format_value(value: f64, unit: &str) -> String {
    if unit == "msg/s" {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The table: per measure and contender, the median over rounds, the spread of the
/// rounds (lowest–highest), the ratios, allocations and the median over rounds of the
/// host CPU time per message. A contender that did not run a workload has no row.
pub fn print_table(
    totals: &[[Totals; WORKLOADS.len()]; 3],
    counting: bool,
    workloads: &[Workload],
) {
    let index = |workload: Workload| WORKLOADS.iter().position(|&w| w == workload).unwrap();
    println!();
    println!(
        "| {:<23} | {:<18} | {:>17} | {:>19} | {:>7} | {:>7} | {:>10} | {:>11} | notes",
        "workload",
        "contender",
        "median of rounds",
        "rounds' spread",
        "÷ raw",
        "÷ tokio",
        "allocs/msg",
        "CPU µs/msg"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|------",
        "-".repeat(25),
        "-".repeat(20),
        "-".repeat(19),
        "-".repeat(21),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(12),
        "-".repeat(13)
    );
    for measure in MEASURES.iter().filter(|m| workloads.contains(&m.workload)) {
        let w = index(measure.workload);
        let figures: Vec<Option<f64>> = (0..3).map(|c| measure.figure(&totals[c][w])).collect();
        let raw = measure.figure(&totals[0][index(measure.reference)]);
        let tokio = measure.figure(&totals[2][index(measure.reference)]);
        for (c, contender) in CONTENDERS.iter().enumerate() {
            let t = &totals[c][w];
            if t.per_round.is_empty() && t.failures.is_empty() {
                continue;
            }
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
            let cpu = if measure.per_round && !t.cpu_per_round.is_empty() {
                format!("{:.2}", median(&t.cpu_per_round))
            } else {
                String::new()
            };
            let spread = if measure.per_round && !t.per_round.is_empty() {
                let min = t.per_round.iter().copied().fold(f64::INFINITY, f64::min);
                let max = t.per_round.iter().copied().fold(0.0, f64::max);
                format!(
                    "{}–{}",
                    format_value(min, measure.unit),
                    format_value(max, measure.unit)
                )
            } else {
                String::new()
            };
            let notes = t.failures.first().map_or_else(String::new, |first| {
                format!(
                    "{} of {} rounds: {first}",
                    t.failures.len(),
                    t.failures.len() + t.per_round.len()
                )
            });
            let figure = figures[c].map_or_else(
                || "failed".to_string(),
                |v| format!("{} {}", format_value(v, measure.unit), measure.unit),
            );
            println!(
                "| {:<23} | {:<18} | {:>17} | {:>19} | {:>7} | {:>7} | {:>10} | {:>11} | {}",
                measure.label,
                contender.name(),
                figure,
                spread,
                ratio(raw),
                ratio(tokio),
                allocs,
                cpu,
                notes
            );
        }
    }
    println!();
    println!(
        "Each round measures every contender afresh; a figure is the median of the rounds' \
         figures (p99: of all samples), and the spread is the lowest and highest round."
    );
    println!(
        "Ratios are this row's figure divided by the raw sys (÷ raw) or tokio (÷ tokio) row's \
         (for batches: their one message per call): below 1 is faster for latencies, above 1 \
         is faster for msg/s."
    );
    println!(
        "allocs/msg: malloc/calloc/realloc/strdup/strndup/posix_memalign/aligned_alloc calls \
         of the whole process (Rust and C, all threads) during the measured part, per message."
    );
    println!(
        "CPU µs/msg: user + system CPU time of the host process (all threads; not the worker) \
         during the measured part, per message: the median of the rounds."
    );
}
