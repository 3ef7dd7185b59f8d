//! `cargo xtask test-all`: formatting, lints, the tests of each backend on
//! its own and of everything together, doctests, and the demo in a real
//! browser, in one run that ends with the line `N passed, N failed`.
//! Stages that talk to Redis, PostgreSQL or MariaDB get the run's one of
//! each, from [`Services`]; the publish dry-run needs crates.io, and is
//! skipped, saying so, when [`registry::reachable`] finds it out of reach.
//!
//! The browser stage builds the demo and runs `session-browser`'s tests
//! with its path in `DEMO_BIN`; they need headless Chromium and
//! chromedriver (Debian: `apt-get install chromium chromium-driver`), and
//! fail, saying so, without them.

use std::path::Path;
use std::process::Command;

use crate::BROWSER;
use crate::registry;
use crate::root;
use crate::run::{self, Tally};
use crate::services::{Service, Services};

/// One step of the run.
struct Stage {
    name: String,
    /// Run first, when given; its failure fails the stage.
    build: Option<Command>,
    command: Command,
    /// The servers it talks to.
    needs: &'static [Service],
    /// Needs the crates.io index.
    registry: bool,
}

/// A backend tested alone.
struct Backend {
    /// Its feature, in the facade and in `package` when that holds more
    /// than one backend.
    feature: &'static str,
    package: &'static str,
    /// `package` holds several backends, each behind `feature`.
    shared: bool,
    needs: &'static [Service],
}

const BACKENDS: [Backend; 6] = [
    Backend {
        feature: "memory",
        package: "http-sessions-memory",
        shared: false,
        needs: &[],
    },
    Backend {
        feature: "redis",
        package: "http-sessions-redis",
        shared: false,
        needs: &[Service::Redis],
    },
    Backend {
        feature: "cookie",
        package: "http-sessions-cookie",
        shared: false,
        needs: &[],
    },
    Backend {
        feature: "postgres",
        package: "http-sessions-sql",
        shared: true,
        needs: &[Service::Postgres],
    },
    Backend {
        feature: "sqlite",
        package: "http-sessions-sql",
        shared: true,
        needs: &[],
    },
    Backend {
        feature: "mysql",
        package: "http-sessions-sql",
        shared: true,
        needs: &[Service::MariaDb],
    },
];

fn stages(root: &std::path::Path) -> Vec<Stage> {
    let cargo = |args: &[&str]| {
        let mut cmd = run::cargo(root);
        cmd.args(args);
        lean_builds(&mut cmd);
        cmd
    };
    let mut stages = vec![
        Stage {
            name: "format".into(),
            build: None,
            needs: &[],
            registry: false,
            command: cargo(&["fmt", "--all", "--", "--check"]),
        },
        Stage {
            name: "clippy".into(),
            build: None,
            needs: &[],
            registry: false,
            command: cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        },
        Stage {
            name: "facade without default features".into(),
            build: None,
            needs: &[],
            registry: false,
            command: cargo(&["check", "-p", "http-sessions", "--no-default-features"]),
        },
        Stage {
            name: "core".into(),
            build: None,
            needs: &[],
            registry: false,
            command: cargo(&[
                "test",
                "-p",
                "http-sessions-core",
                "--all-features",
                "--all-targets",
            ]),
        },
        Stage {
            name: "everything, all features".into(),
            build: None,
            needs: Service::ALL,
            registry: false,
            // The browser's tests run in their own stage, after the demo
            // they drive is built.
            command: cargo(&[
                "test",
                "--workspace",
                "--exclude",
                BROWSER,
                "--all-features",
                "--all-targets",
            ]),
        },
        Stage {
            name: "doctests".into(),
            build: None,
            needs: Service::ALL,
            registry: false,
            // The same packages as the stage before, so the same features
            // and its builds (the browser's package has no doctests).
            command: cargo(&[
                "test",
                "--workspace",
                "--exclude",
                BROWSER,
                "--all-features",
                "--doc",
            ]),
        },
    ];
    // Each backend alone, in its own crate and through the facade, before
    // everything together.
    let together = stages.len() - 2;
    let alone = BACKENDS.iter().flat_map(|backend| {
        let Backend {
            feature,
            package,
            shared,
            needs,
        } = *backend;
        // Alone, a backend's crate builds and runs its unit tests; its
        // integration tests run once, with everything together, where the
        // same tests see the same code (a backend's own features add TLS
        // and tests of it, no other behaviour). A crate holding several
        // backends builds with each alone; one holding a single backend
        // builds its integration tests too, so that one needing a feature
        // only unification gave it fails here.
        let (build, own) = if shared {
            let own = cargo(&[
                "test",
                "-p",
                package,
                "--no-default-features",
                "--features",
                feature,
                "--lib",
            ]);
            (None, own)
        } else {
            let build = cargo(&["test", "-p", package, "--all-targets", "--no-run"]);
            (Some(build), cargo(&["test", "-p", package, "--lib"]))
        };
        // Through the facade, each backend alone: its doctests, and its
        // examples built for `tests/examples.rs` in the stages after.
        let facade = cargo(&[
            "test",
            "-p",
            "http-sessions",
            "--no-default-features",
            "--features",
            &format!("{feature},axum"),
        ]);
        [
            Stage {
                name: format!("{feature} backend alone"),
                build,
                needs,
                registry: false,
                command: own,
            },
            Stage {
                name: format!("facade with the {feature} backend alone"),
                build: None,
                needs,
                registry: false,
                command: facade,
            },
        ]
    });
    stages.splice(together..together, alone);
    // The demo as a person's browser sees it: the binary built first, its
    // path given to the tests.
    let mut browser = cargo(&["test", "-p", BROWSER]);
    browser.env("DEMO_BIN", demo_binary(root));
    stages.push(Stage {
        name: "demo in a browser".into(),
        build: Some(cargo(&[
            "build",
            "-p",
            "http-sessions",
            "--example",
            "demo",
        ])),
        needs: &[],
        registry: false,
        command: browser,
    });
    // What crates.io would get: each published crate packaged, its
    // manifest made as uploaded, its metadata and files checked, and its
    // dependencies resolved against the crates.io index, the crates of
    // this workspace, which depend on each other and are not published
    // yet, through a local registry of the packages just made (the
    // workspace form). `--no-verify`: no build of each package again, which
    // cost this stage a minute and a half; every stage above builds these
    // crates, each alone and all together, and none reads a file outside
    // its own folder, all of which a package holds. `--allow-dirty` so the
    // stage checks the tree as it is, not only a clean commit.
    stages.push(Stage {
        name: "publish dry-run".into(),
        build: None,
        needs: &[],
        registry: true,
        command: cargo(&[
            "publish",
            "--workspace",
            "--dry-run",
            "--no-verify",
            "--allow-dirty",
        ]),
    });
    stages
}

/// What every build of the run does unless the environment says
/// otherwise: line tables only for debug information, which keeps file
/// and line in a failing test's backtrace and took a fifth off a fresh
/// build (and half its size on disk), and no incremental state, which a
/// run from a fresh clone writes for nothing. Both are the same for every
/// stage, so no stage rebuilds what another built.
fn lean_builds(cmd: &mut Command) {
    for (var, value) in [
        ("CARGO_PROFILE_DEV_DEBUG", "line-tables-only"),
        ("CARGO_INCREMENTAL", "0"),
    ] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, value);
        }
    }
}

/// Where `cargo build -p http-sessions --example demo` puts the demo.
fn demo_binary(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from)
        .join("debug")
        .join("examples")
        .join("demo")
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("test-all takes no arguments, got {extra:?}"));
    }
    let root = root();
    let mut tally = Tally::default();
    let mut failed_stages = Vec::new();
    // Each started before the first stage that needs it, and dropped (its
    // servers stopped) when this function returns, by any path.
    let mut services = Services::default();
    let mut skipped_stages = Vec::new();
    for mut stage in stages(&root) {
        if stage.registry
            && let Err(why) = registry::reachable()
        {
            // Not a failure: nothing in the tree is wrong. Said here and
            // again in the summary, so the skip is never silent.
            println!(
                "\n==> {}\nskipped: crates.io cannot be reached ({why}); \
                 run `cargo publish --workspace --dry-run` where it can",
                stage.name
            );
            skipped_stages.push(stage.name.clone());
            continue;
        }
        if let Err(why) = services.apply(stage.needs, &mut stage.command) {
            // Never a silent skip: the stage counts as failed.
            println!("\n==> {}\nnot run: {why}", stage.name);
            tally.failed += 1;
            failed_stages.push(stage.name.clone());
            continue;
        }
        println!("\n==> {}", stage.name);
        let before = tally;
        let began = std::time::Instant::now();
        let built = match stage.build {
            Some(build) => run::streamed(build, &mut tally)?,
            None => true,
        };
        let ok = built && run::streamed(stage.command, &mut tally)?;
        // Where a run's time goes, stage by stage.
        println!(
            "<== {} took {:.0} s",
            stage.name,
            began.elapsed().as_secs_f64()
        );
        // A stage that fails without a failing test (fmt, clippy, a build
        // error) still counts as one failure.
        if !ok {
            if tally.failed == before.failed {
                tally.failed += 1;
            }
            failed_stages.push(stage.name.clone());
        }
    }
    println!();
    if !skipped_stages.is_empty() {
        println!(
            "skipped stages (crates.io unreachable): {}",
            skipped_stages.join(", ")
        );
    }
    if !failed_stages.is_empty() {
        println!("failed stages: {}", failed_stages.join(", "));
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if failed_stages.is_empty() {
        Ok(())
    } else {
        Err(format!("{} stage(s) failed", failed_stages.len()))
    }
}
