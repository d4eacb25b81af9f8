//! taglock (native and component) against Cedar and Rego (regorus): every engine
//! on every request of the three workloads, interleaved in one run.
//!
//! What is measured: one decision on a prepared request (taglock's typed
//! `Request`; Cedar's `Request` + `Entities`; regorus's `input` value, set on the
//! engine and evaluated) — request preparation is outside the timed loop, as in
//! `policy-core/benches/decide.rs`. And the load of each policy: taglock
//! `Policy::from_json`, the component's `load_policy` (host built once, outside),
//! Cedar `PolicySet::from_str`, regorus parse + the first evaluation (which
//! prepares the rules).
//!
//! How: every engine's decisions are checked against taglock native first
//! (`check_agreement` panics on any difference). Then each (request, engine) pair
//! is calibrated to a batch of about `PEER_BENCH_BATCH_MS` (default 5 ms); the
//! run makes `PEER_BENCH_ROUNDS` (default 31) rounds, each timing one batch of
//! every pair in a rotated order, so engines share the machine's noise. A
//! request's figure is the median of its rounds; a workload's is the mean (and
//! the median) of its requests' figures.
//!
//! Run: `cargo bench --manifest-path benches/peers/Cargo.toml`
//! (about 15 s once built; results in `docs/benchmarks.md`, "Peer engines").

use std::hint::black_box;
use std::time::{Duration, Instant};
use taglock_host_wasmtime::Host;
use taglock_peer_bench::{
    ENGINES, Loaded, Workload, cedar::CedarPolicy, check_agreement, check_probes, rego::RegoPolicy,
    workloads,
};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs case `index` on `engine` `iters` times; returns the elapsed time.
fn run(
    loaded: &mut Loaded,
    workload: &Workload,
    engine: usize,
    index: usize,
    iters: u64,
) -> Duration {
    let request = &workload.cases[index].request;
    let start = Instant::now();
    match engine {
        0 => {
            for _ in 0..iters {
                black_box(black_box(&loaded.native).evaluate(black_box(request)));
            }
        }
        1 => {
            for _ in 0..iters {
                black_box(
                    black_box(&loaded.component)
                        .evaluate(black_box(request))
                        .expect("component decides"),
                );
            }
        }
        2 => {
            let cedar_request = &loaded.cedar_requests[index];
            for _ in 0..iters {
                black_box(black_box(&loaded.cedar).decide(black_box(cedar_request)));
            }
        }
        _ => {
            let input = &loaded.rego_inputs[index];
            for _ in 0..iters {
                black_box(loaded.rego.decide(black_box(input)));
            }
        }
    }
    start.elapsed()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// `1234.5` ns as `1.23 µs`, `987` as `987 ns`.
fn time(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn load_once(host: &Host, workload: &Workload, engine: usize) -> Duration {
    let start = Instant::now();
    match engine {
        0 => {
            black_box(policy_core::Policy::from_json(black_box(&workload.taglock)).expect("loads"));
        }
        1 => {
            black_box(
                host.load_policy(black_box(&workload.taglock))
                    .expect("loads"),
            );
        }
        2 => {
            black_box(CedarPolicy::load(black_box(&workload.translation.cedar)));
        }
        _ => {
            black_box(RegoPolicy::load(black_box(&workload.translation.rego)));
        }
    }
    start.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rounds = env_number("PEER_BENCH_ROUNDS", 31).max(1) as usize;
    let batch = Duration::from_millis(env_number("PEER_BENCH_BATCH_MS", 5).max(1));
    let load_rounds = env_number("PEER_BENCH_LOAD_ROUNDS", 15).max(1) as usize;

    let host = Host::embedded().expect("embedded component");
    let workloads = workloads();
    let mut loaded: Vec<Loaded> = workloads.iter().map(|w| Loaded::new(&host, w)).collect();

    // Decisions first: a benchmark must not measure a wrong answer.
    for (loaded, workload) in loaded.iter_mut().zip(&workloads) {
        check_agreement(loaded, workload);
        let (probes, allowed) = check_probes(loaded, workload);
        println!(
            "{}: the {} engines agree on the {} timed requests and on {probes} more ({allowed} allowed)",
            workload.name,
            ENGINES.len(),
            workload.cases.len()
        );
    }

    // Every (workload, case, engine), calibrated to a batch of about `batch`.
    let mut pairs = Vec::new();
    for (w, workload) in workloads.iter().enumerate() {
        for c in 0..workload.cases.len() {
            for e in 0..ENGINES.len() {
                let mut iters = 1u64;
                loop {
                    let elapsed = run(&mut loaded[w], workload, e, c, iters);
                    if elapsed >= batch / 4 {
                        let per = elapsed.as_secs_f64() / iters as f64;
                        iters = ((batch.as_secs_f64() / per) as u64).max(1);
                        break;
                    }
                    iters *= 4;
                }
                pairs.push((w, c, e, iters));
            }
        }
    }

    // Interleaved rounds, each in a rotated order.
    let mut samples = vec![Vec::with_capacity(rounds); pairs.len()];
    for round in 0..rounds {
        for k in 0..pairs.len() {
            let p = (k + round * 7) % pairs.len();
            let (w, c, e, iters) = pairs[p];
            let elapsed = run(&mut loaded[w], &workloads[w], e, c, iters);
            samples[p].push(elapsed.as_nanos() as f64 / iters as f64);
        }
    }
    // Median per (workload, case, engine).
    let mut per_case: Vec<Vec<Vec<f64>>> = workloads
        .iter()
        .map(|w| vec![vec![0.0; ENGINES.len()]; w.cases.len()])
        .collect();
    for (p, &(w, c, e, _)) in pairs.iter().enumerate() {
        per_case[w][c][e] = median(&mut samples[p]);
    }

    // Loads, interleaved the same way.
    let mut loads = vec![vec![Vec::with_capacity(load_rounds); ENGINES.len()]; workloads.len()];
    for _ in 0..load_rounds {
        for (w, workload) in workloads.iter().enumerate() {
            for (e, engine_loads) in loads[w].iter_mut().enumerate() {
                engine_loads.push(load_once(&host, workload, e).as_nanos() as f64);
            }
        }
    }

    println!(
        "\n{rounds} rounds of ~{} ms batches per (request, engine); per request the median of the rounds\n",
        batch.as_millis()
    );
    println!("| workload | request | {} |", ENGINES.join(" | "));
    println!("| --- | --- |{}", " ---: |".repeat(ENGINES.len()));
    for (w, workload) in workloads.iter().enumerate() {
        for (c, case) in workload.cases.iter().enumerate() {
            let cells: Vec<String> = per_case[w][c].iter().map(|&ns| time(ns)).collect();
            println!(
                "| {} | {} | {} |",
                workload.name,
                case.name,
                cells.join(" | ")
            );
        }
    }

    println!(
        "\nPer decision over each workload's request mix (mean and median of the requests' medians); ratios of the means\n"
    );
    println!("| workload | engine | mean | median | × best peer | × taglock native |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (w, workload) in workloads.iter().enumerate() {
        let column = |e: usize| -> Vec<f64> { per_case[w].iter().map(|row| row[e]).collect() };
        let means: Vec<f64> = (0..ENGINES.len()).map(|e| mean(&column(e))).collect();
        let best_peer = means[2].min(means[3]);
        for (e, engine) in ENGINES.iter().enumerate() {
            let mut values = column(e);
            println!(
                "| {} | {engine} | {} | {} | {:.2} | {:.2} |",
                workload.name,
                time(means[e]),
                time(median(&mut values)),
                means[e] / best_peer,
                means[e] / means[0],
            );
        }
    }

    println!("\nPolicy load (median of {load_rounds})\n");
    println!("| workload | {} |", ENGINES.join(" | "));
    println!("| --- |{}", " ---: |".repeat(ENGINES.len()));
    for (w, workload) in workloads.iter().enumerate() {
        let cells: Vec<String> = loads[w].iter_mut().map(|l| time(median(l))).collect();
        println!("| {} | {} |", workload.name, cells.join(" | "));
    }
}
