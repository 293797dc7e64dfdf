//! The benchmark's results: the measurements, the ratios derived from them, and their rendering as
//! a Markdown table (`target/bench/results.md`) and hand-written JSON (`target/bench/results.json`).

use std::fmt::Write;

use super::measure::{Sample, Stats};

/// Where the benchmark ran.
#[derive(Debug, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub docker_server: String,
    pub storage_driver: String,
    pub docker_cli: String,
    /// Which cargo-gear was measured.
    pub cargo_gear: String,
    pub load_before: String,
    pub load_after: String,
}

/// One monorepo size.
#[derive(Debug, Default)]
pub struct SizeResult {
    pub gears: usize,
    pub files: usize,
    pub bytes: u64,
    pub generate_seconds: f64,
    /// The first `cargo gear build` (nothing built, hash cache empty).
    pub first_build: Sample,
    /// The first docker loop (its images not yet built, the fixture present).
    pub first_loop: Sample,
    pub noop_build: Stats,
    pub docker_loop: Stats,
    pub plan_cold: Stats,
    pub plan_warm: Stats,
    pub sha256sum: Stats,
    /// `cargo gear build` after one file of one gear changed.
    pub one_file_build: Stats,
    /// `docker build` of that gear alone, its context holding the same change.
    pub one_file_docker: Stats,
}

impl SizeResult {
    fn mb(&self) -> f64 {
        self.bytes as f64 / 1e6
    }
    pub fn speedup(&self) -> f64 {
        self.docker_loop.wall() / self.noop_build.wall()
    }
    pub fn cold_over_warm(&self) -> f64 {
        self.plan_cold.wall() / self.plan_warm.wall()
    }
    pub fn plan_mb_s(&self) -> f64 {
        self.mb() / self.plan_cold.wall()
    }
    /// Throughput of the hashing part alone: the bytes over what a cold plan costs more than a
    /// warm one; NaN when the difference drowns in the noise (cold not slower than warm).
    pub fn hashing_mb_s(&self) -> f64 {
        let extra = self.plan_cold.wall() - self.plan_warm.wall();
        if extra > 0.0 {
            self.mb() / extra
        } else {
            f64::NAN
        }
    }
    pub fn sha256sum_mb_s(&self) -> f64 {
        self.mb() / self.sha256sum.wall()
    }
    /// The first build's lead over the first docker loop.
    pub fn first_build_speedup(&self) -> f64 {
        self.first_loop.wall / self.first_build.wall
    }
    /// A one-file change's build against `docker build` of that gear alone.
    pub fn one_file_ratio(&self) -> f64 {
        self.one_file_build.wall() / self.one_file_docker.wall()
    }
}

/// The warm plan of a large tree.
#[derive(Debug, Default)]
pub struct BigResult {
    pub layers: usize,
    pub files_per_layer: usize,
    pub files: usize,
    pub bytes: u64,
    pub generate_seconds: f64,
    /// A plan with the hash cache deleted, the files in the page cache.
    pub plan_cold: Stats,
    pub plan_warm: Stats,
    /// The same warm plan with no engine answering: the planner alone, without image statuses.
    pub plan_warm_no_engine: Stats,
    /// `git status --porcelain` of the same tree, committed.
    pub git_status: Stats,
    /// `cargo gear graph` and `cargo gear validate` of the tree.
    pub graph: Stats,
    pub validate: Stats,
}

impl BigResult {
    /// The warm plan with the engine against `git status`.
    pub fn plan_over_git_status(&self) -> f64 {
        self.plan_warm.wall() / self.git_status.wall()
    }
}

/// Everything one `cargo xtask bench` measured.
#[derive(Debug, Default)]
pub struct Results {
    pub machine: Machine,
    /// `cargo` (a Cargo workspace) or `root` (a `--root` tree).
    pub layout: &'static str,
    pub quick: bool,
    pub runs: usize,
    pub files_per_gear: usize,
    pub sizes: Vec<SizeResult>,
    pub big: Option<BigResult>,
}

/// A target of the benchmark (issue 14), and how the run did against it.
#[derive(Debug)]
pub struct Target {
    pub what: String,
    /// The goal, for people: "≥ 200×".
    pub goal: &'static str,
    /// The measured value, for people, and whether it meets the goal (`None`: not measured).
    pub measured: Option<(String, f64, bool)>,
}

/// No-op build speedups over the warm docker loop the benchmark aims at, by gears.
pub const NOOP_TARGETS: [(usize, f64); 2] = [(10, 60.0), (50, 200.0)];
/// A one-file change's build against `docker build` of that gear alone, at most.
pub const ONE_FILE_TARGET: f64 = 1.2;
/// The first build's lead over the first docker loop, at least (what it was before).
pub const FIRST_BUILD_TARGET: f64 = 1.3;
/// A warm plan of the large tree against `git status`: below 1, stretch 0.6.
pub const GIT_STATUS_TARGET: f64 = 1.0;
/// Peak RSS of that warm plan, MiB.
pub const BIG_RSS_TARGET: f64 = 150.0;
/// Seconds of a cold plan of the large tree.
pub const BIG_COLD_TARGET: f64 = 1.0;
/// Seconds of `graph` and `validate` of the large tree.
pub const BIG_GRAPH_TARGET: f64 = 0.15;

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.1} s")
    }
}

fn mb_s(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.0}")
    } else {
        "n/a".into()
    }
}

fn ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// A ratio compared with a goal like 1.2×: two decimals below 10, so that 1.24× does not
/// read as the 1.2× it misses.
fn precise_ratio(r: f64) -> String {
    if r >= 10.0 {
        ratio(r)
    } else {
        format!("{r:.2}×")
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Results {
    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# cargo-gear benchmark{}\n",
            if self.quick { " (quick smoke run)" } else { "" }
        );
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), {:.1} GiB RAM, Linux {}; Docker Engine {} ({}), docker CLI {}; \
             cargo-gear {}. Load average before/after: {} / {}.\n",
            m.cpus,
            m.cpu_model,
            m.mem_gib,
            m.kernel,
            m.docker_server,
            m.storage_driver,
            m.docker_cli,
            m.cargo_gear,
            m.load_before,
            m.load_after
        );
        let _ = writeln!(
            out,
            "{} Each gear has {} files (a run script and text files of 1–5 KiB in nested directories) and is \
             built on one shared base layer over the `cargo-gear-fixture/busybox:1` fixture. Timings are \
             medians of {} runs, interleaved with what they are compared to; memory is the highest peak RSS \
             (wait4) of those runs. MB = 10^6 bytes.\n",
            if self.layout == "root" {
                "Trees without Cargo, found with `--root`."
            } else {
                "Cargo virtual workspaces listing their layers in `[workspace.metadata.gear] members`."
            },
            self.files_per_gear,
            self.runs
        );
        if !self.sizes.is_empty() {
            let _ = write!(out, "| |");
            for s in &self.sizes {
                let _ = write!(out, " {} gears |", s.gears);
            }
            let _ = write!(out, "\n|---|");
            for _ in &self.sizes {
                let _ = write!(out, "---:|");
            }
            out.push('\n');
            type Row<'a> = (&'a str, Box<dyn Fn(&SizeResult) -> String>);
            let rows: Vec<Row> = vec![
                (
                    "build-context files (MB)",
                    Box::new(|s| format!("{} ({:.1})", thousands(s.files), s.mb())),
                ),
                (
                    "first `cargo gear build` (empty cache)",
                    Box::new(|s| secs(s.first_build.wall)),
                ),
                (
                    "first `docker build` loop (fixture only)",
                    Box::new(|s| secs(s.first_loop.wall)),
                ),
                (
                    "**no-op `cargo gear build`**",
                    Box::new(|s| secs(s.noop_build.wall())),
                ),
                (
                    "**warm `docker build` loop**",
                    Box::new(|s| secs(s.docker_loop.wall())),
                ),
                (
                    "**speedup: docker loop / no-op build**",
                    Box::new(|s| format!("**{}**", ratio(s.speedup()))),
                ),
                (
                    "one file changed in one gear: `cargo gear build`",
                    Box::new(|s| secs(s.one_file_build.wall())),
                ),
                (
                    "the same change: `docker build` of that gear alone",
                    Box::new(|s| secs(s.one_file_docker.wall())),
                ),
                (
                    "cold `cargo gear plan` (no hash cache)",
                    Box::new(|s| secs(s.plan_cold.wall())),
                ),
                (
                    "warm `cargo gear plan`",
                    Box::new(|s| secs(s.plan_warm.wall())),
                ),
                (
                    "**cold / warm plan**",
                    Box::new(|s| format!("**{}**", ratio(s.cold_over_warm()))),
                ),
                (
                    "cold plan throughput, end to end (MB/s)",
                    Box::new(|s| mb_s(s.plan_mb_s())),
                ),
                (
                    "cold plan throughput, hashing only: (cold − warm) (MB/s)",
                    Box::new(|s| mb_s(s.hashing_mb_s())),
                ),
                (
                    "`xargs -0 sha256sum` over the same files (MB/s)",
                    Box::new(|s| mb_s(s.sha256sum_mb_s())),
                ),
                (
                    "**cold plan / sha256sum throughput**",
                    Box::new(|s| format!("**{}**", ratio(s.plan_mb_s() / s.sha256sum_mb_s()))),
                ),
                (
                    "CPU time: no-op build / warm plan / cold plan",
                    Box::new(|s| {
                        format!(
                            "{:.2} / {:.2} / {:.2} s",
                            s.noop_build.cpu(),
                            s.plan_warm.cpu(),
                            s.plan_cold.cpu()
                        )
                    }),
                ),
                (
                    "peak RSS: warm plan",
                    Box::new(|s| format!("{:.1} MiB", s.plan_warm.max_rss_mib())),
                ),
                (
                    "peak RSS: cold plan",
                    Box::new(|s| format!("{:.1} MiB", s.plan_cold.max_rss_mib())),
                ),
                (
                    "peak RSS: no-op build",
                    Box::new(|s| format!("{:.1} MiB", s.noop_build.max_rss_mib())),
                ),
            ];
            for (label, cell) in rows {
                let _ = write!(out, "| {label} |");
                for s in &self.sizes {
                    let _ = write!(out, " {} |", cell(s));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        if let Some(b) = &self.big {
            let _ = writeln!(
                out,
                "Large tree: {} gears on the base layer, {} files each ({} files, {:.0} MB), written in {}.\n",
                thousands(b.layers),
                b.files_per_layer,
                thousands(b.files),
                b.bytes as f64 / 1e6,
                secs(b.generate_seconds)
            );
            let _ = writeln!(
                out,
                "| {} gears | time | CPU | peak RSS |\n|---|---:|---:|---:|",
                thousands(b.layers)
            );
            for (label, st) in [
                ("cold `cargo gear plan` (no hash cache)", &b.plan_cold),
                ("**warm `cargo gear plan`**", &b.plan_warm),
                (
                    "warm `cargo gear plan`, no engine (no image statuses)",
                    &b.plan_warm_no_engine,
                ),
                (
                    "**`git status --porcelain`** (the tree committed)",
                    &b.git_status,
                ),
                ("`cargo gear graph`", &b.graph),
                ("`cargo gear validate`", &b.validate),
            ] {
                let _ = writeln!(
                    out,
                    "| {label} | {} | {:.2} s | {:.1} MiB |",
                    secs(st.wall()),
                    st.cpu(),
                    st.max_rss_mib()
                );
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "Targets (issue 14), ratios of timings taken in this run:\n\n| target | goal | measured | met |\n|---|---|---:|---|"
        );
        for t in self.targets() {
            let (value, met) = match &t.measured {
                Some((value, _, met)) => (value.as_str(), if *met { "met" } else { "**not met**" }),
                None => ("not measured", ""),
            };
            let _ = writeln!(out, "| {} | {} | {value} | {met} |", t.what, t.goal);
        }
        out
    }

    /// Every target, measured or not.
    pub fn targets(&self) -> Vec<Target> {
        let size = |gears: usize| self.sizes.iter().find(|s| s.gears == gears);
        let at_least = |v: f64, goal: f64| Some((precise_ratio(v), v, v >= goal));
        let mut targets = Vec::new();
        for (gears, goal) in NOOP_TARGETS {
            targets.push(Target {
                what: format!("no-op `cargo gear build`, {gears} gears: docker loop / cargo-gear"),
                goal: if gears == 10 { "≥ 60×" } else { "≥ 200×" },
                measured: size(gears).and_then(|s| at_least(s.speedup(), goal)),
            });
        }
        // The largest size measured: the first builds of small ones are mostly fixed costs.
        let largest = self.sizes.iter().max_by_key(|s| s.gears);
        let one_file = size(50).or(largest);
        targets.push(Target {
            what: format!(
                "one file changed in one gear of {}: `cargo gear build` / `docker build` of that gear alone",
                one_file.map_or(50, |s| s.gears)
            ),
            goal: "≤ 1.2×",
            measured: one_file.map(|s| {
                let r = s.one_file_ratio();
                (precise_ratio(r), r, r <= ONE_FILE_TARGET)
            }),
        });
        targets.push(Target {
            what: format!(
                "first build from nothing, {} gears: first docker loop / first `cargo gear build`",
                largest.map_or(50, |s| s.gears)
            ),
            goal: "≥ 1.3×",
            measured: largest.and_then(|s| at_least(s.first_build_speedup(), FIRST_BUILD_TARGET)),
        });
        let big = self.big.as_ref();
        let layers = big.map_or(1000, |b| b.layers);
        targets.push(Target {
            what: format!(
                "warm `cargo gear plan` of {} layers with the engine / `git status --porcelain`",
                thousands(layers)
            ),
            goal: "< 1.0× (stretch ≤ 0.6×)",
            measured: big.map(|b| {
                let r = b.plan_over_git_status();
                (format!("{r:.2}×"), r, r < GIT_STATUS_TARGET)
            }),
        });
        targets.push(Target {
            what: "peak RSS of that warm plan".into(),
            goal: "≤ 150 MB",
            measured: big.map(|b| {
                let mib = b.plan_warm.max_rss_mib();
                (format!("{mib:.0} MiB"), mib, mib <= BIG_RSS_TARGET)
            }),
        });
        targets.push(Target {
            what: format!(
                "cold `cargo gear plan` of {} layers (no hash cache)",
                thousands(layers)
            ),
            goal: "≤ 1.0 s",
            measured: big.map(|b| {
                let t = b.plan_cold.wall();
                (secs(t), t, t <= BIG_COLD_TARGET)
            }),
        });
        for (name, stats) in [
            ("graph", big.map(|b| &b.graph)),
            ("validate", big.map(|b| &b.validate)),
        ] {
            targets.push(Target {
                what: format!("`cargo gear {name}` of {} Gear.toml", thousands(layers + 2)),
                goal: "≤ 0.15 s",
                measured: stats.map(|st| {
                    let t = st.wall();
                    (secs(t), t, t <= BIG_GRAPH_TARGET)
                }),
            });
        }
        targets
    }

    /// The JSON report.
    pub fn json(&self) -> String {
        let m = &self.machine;
        let machine = J::Obj(vec![
            ("cpus", J::Int(m.cpus as u64)),
            ("cpu_model", J::Str(m.cpu_model.clone())),
            ("mem_gib", J::Num(m.mem_gib)),
            ("kernel", J::Str(m.kernel.clone())),
            ("docker_server", J::Str(m.docker_server.clone())),
            ("storage_driver", J::Str(m.storage_driver.clone())),
            ("docker_cli", J::Str(m.docker_cli.clone())),
            ("cargo_gear", J::Str(m.cargo_gear.clone())),
            ("load_before", J::Str(m.load_before.clone())),
            ("load_after", J::Str(m.load_after.clone())),
        ]);
        let sizes = self
            .sizes
            .iter()
            .map(|s| {
                J::Obj(vec![
                    ("gears", J::Int(s.gears as u64)),
                    ("built_layers", J::Int(s.gears as u64 + 1)),
                    ("files", J::Int(s.files as u64)),
                    ("bytes", J::Int(s.bytes)),
                    ("generate_seconds", J::Num(s.generate_seconds)),
                    ("first_build", sample(&s.first_build)),
                    ("first_docker_loop", sample(&s.first_loop)),
                    ("noop_build", stats(&s.noop_build)),
                    ("docker_loop", stats(&s.docker_loop)),
                    ("plan_cold", stats(&s.plan_cold)),
                    ("plan_warm", stats(&s.plan_warm)),
                    ("sha256sum", stats(&s.sha256sum)),
                    ("one_file_build", stats(&s.one_file_build)),
                    ("one_file_docker_build", stats(&s.one_file_docker)),
                    (
                        "throughput_mb_per_s",
                        J::Obj(vec![
                            ("plan_cold", J::Num(s.plan_mb_s())),
                            ("plan_cold_hashing_only", J::Num(s.hashing_mb_s())),
                            ("sha256sum", J::Num(s.sha256sum_mb_s())),
                        ]),
                    ),
                    (
                        "ratios",
                        J::Obj(vec![
                            ("docker_loop_over_noop_build", J::Num(s.speedup())),
                            ("cold_over_warm_plan", J::Num(s.cold_over_warm())),
                            (
                                "plan_over_sha256sum_throughput",
                                J::Num(s.plan_mb_s() / s.sha256sum_mb_s()),
                            ),
                            (
                                "first_docker_loop_over_first_build",
                                J::Num(s.first_build_speedup()),
                            ),
                            (
                                "one_file_build_over_docker_build",
                                J::Num(s.one_file_ratio()),
                            ),
                        ]),
                    ),
                ])
            })
            .collect();
        let big = match &self.big {
            None => J::Null,
            Some(b) => J::Obj(vec![
                ("gears", J::Int(b.layers as u64)),
                ("files_per_gear", J::Int(b.files_per_layer as u64)),
                ("files", J::Int(b.files as u64)),
                ("bytes", J::Int(b.bytes)),
                ("generate_seconds", J::Num(b.generate_seconds)),
                ("plan_cold", stats(&b.plan_cold)),
                ("plan_warm", stats(&b.plan_warm)),
                ("plan_warm_no_engine", stats(&b.plan_warm_no_engine)),
                ("git_status", stats(&b.git_status)),
                ("graph", stats(&b.graph)),
                ("validate", stats(&b.validate)),
                (
                    "plan_warm_over_git_status",
                    J::Num(b.plan_over_git_status()),
                ),
            ]),
        };
        let targets = self
            .targets()
            .into_iter()
            .map(|t| {
                let (value, met) = match t.measured {
                    Some((_, value, met)) => (J::Num(value), J::Bool(met)),
                    None => (J::Null, J::Null),
                };
                J::Obj(vec![
                    ("what", J::Str(t.what)),
                    ("goal", J::Str(t.goal.to_owned())),
                    ("measured", value),
                    ("met", met),
                ])
            })
            .collect();
        let root = J::Obj(vec![
            ("quick", J::Bool(self.quick)),
            ("runs", J::Int(self.runs as u64)),
            ("files_per_gear", J::Int(self.files_per_gear as u64)),
            ("layout", J::Str(self.layout.to_owned())),
            ("machine", machine),
            ("sizes", J::Arr(sizes)),
            ("large_tree", big),
            ("targets", J::Arr(targets)),
        ]);
        let mut out = String::new();
        root.write(&mut out, 0);
        out.push('\n');
        out
    }
}

fn sample(s: &Sample) -> J {
    J::Obj(vec![
        ("seconds", J::Num(s.wall)),
        ("cpu_seconds", J::Num(s.cpu)),
        ("max_rss_mib", J::Num(s.max_rss_kib as f64 / 1024.0)),
    ])
}

fn stats(s: &Stats) -> J {
    J::Obj(vec![
        ("median_seconds", J::Num(s.wall())),
        (
            "seconds",
            J::Arr(s.walls().into_iter().map(J::Num).collect()),
        ),
        ("median_cpu_seconds", J::Num(s.cpu())),
        ("max_rss_mib", J::Num(s.max_rss_mib())),
    ])
}

/// Just enough JSON.
enum J {
    Null,
    Bool(bool),
    Int(u64),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    fn write(&self, out: &mut String, indent: usize) {
        let pad = |n: usize| "  ".repeat(n);
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => out.push_str(&n.to_string()),
            J::Num(x) if x.is_finite() => {
                let _ = write!(out, "{}", (x * 1e6).round() / 1e6);
            }
            J::Num(_) => out.push_str("null"),
            J::Str(s) => string(out, s),
            J::Arr(items) if items.iter().all(|i| matches!(i, J::Num(_) | J::Int(_))) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, indent);
                }
                out.push(']');
            }
            J::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    item.write(out, indent + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
            J::Obj(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    string(out, key);
                    out.push_str(": ");
                    value.write(out, indent + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push('}');
            }
        }
    }
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values() {
        let mut out = String::new();
        J::Obj(vec![
            ("a", J::Str("q\"\\\n\u{1}".into())),
            ("b", J::Arr(vec![J::Num(1.5), J::Int(2)])),
            ("c", J::Num(f64::NAN)),
            ("d", J::Arr(vec![J::Null, J::Bool(true)])),
        ])
        .write(&mut out, 0);
        assert_eq!(
            out,
            "{\n  \"a\": \"q\\\"\\\\\\n\\u0001\",\n  \"b\": [1.5, 2],\n  \"c\": null,\n  \"d\": [\n    null,\n    true\n  ]\n}"
        );
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(100004), "100,004");
        assert_eq!(thousands(999), "999");
        assert_eq!(secs(0.12345), "0.123 s");
        assert_eq!(secs(12.345), "12.3 s");
        assert_eq!(ratio(123.4), "123×");
        assert_eq!(ratio(3.45), "3.5×");
        assert_eq!(precise_ratio(1.237), "1.24×");
        assert_eq!(precise_ratio(36.4), "36×");
    }
}
