//! `cargo xtask test-all`: formatting, lints, the tests of each backend on
//! its own and of everything together, and doctests, in one run that ends
//! with the line `N passed, N failed`. Stages that talk to Redis get the
//! one [`Redis`] of the run; the publish dry-run needs crates.io, and is
//! skipped, saying so, when [`registry::reachable`] finds it out of reach.

use std::process::Command;

use crate::redis::Redis;
use crate::registry;
use crate::root;
use crate::run::{self, Tally};

/// One step of the run.
struct Stage {
    name: String,
    command: Command,
    /// Needs `REDIS_URL` and `REDIS_CLUSTER_URLS`.
    redis: bool,
    /// Needs the crates.io index.
    registry: bool,
}

/// Each backend: its facade feature, its crate, and whether it needs Redis.
const BACKENDS: [(&str, &str, bool); 3] = [
    ("memory", "http-sessions-memory", false),
    ("redis", "http-sessions-redis", true),
    ("cookie", "http-sessions-cookie", false),
];

fn stages(root: &std::path::Path) -> Vec<Stage> {
    let cargo = |args: &[&str]| {
        let mut cmd = run::cargo(root);
        cmd.args(args);
        cmd
    };
    let mut stages = vec![
        Stage {
            name: "format".into(),
            redis: false,
            registry: false,
            command: cargo(&["fmt", "--all", "--", "--check"]),
        },
        Stage {
            name: "clippy".into(),
            redis: false,
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
            redis: false,
            registry: false,
            command: cargo(&["check", "-p", "http-sessions", "--no-default-features"]),
        },
        Stage {
            name: "core".into(),
            redis: false,
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
            redis: true,
            registry: false,
            command: cargo(&["test", "--workspace", "--all-features", "--all-targets"]),
        },
        Stage {
            name: "doctests".into(),
            redis: true,
            registry: false,
            command: cargo(&["test", "--workspace", "--all-features", "--doc"]),
        },
    ];
    // Each backend alone, in its own crate and through the facade, before
    // everything together.
    let together = stages.len() - 2;
    let alone = BACKENDS.iter().flat_map(|&(feature, package, redis)| {
        [
            Stage {
                name: format!("{feature} backend alone"),
                redis,
                registry: false,
                command: cargo(&["test", "-p", package, "--all-targets"]),
            },
            Stage {
                name: format!("facade with the {feature} backend alone"),
                redis,
                registry: false,
                command: cargo(&[
                    "test",
                    "-p",
                    "http-sessions",
                    "--no-default-features",
                    "--features",
                    &format!("{feature},axum"),
                ]),
            },
        ]
    });
    stages.splice(together..together, alone);
    // Last, as it builds every published crate again from its package:
    // what crates.io would get, each crate on its own. The crates depend on
    // each other and none is published yet, so the workspace form, which
    // resolves them through a local registry of the packages just made.
    // `--allow-dirty` so the stage checks the tree as it is, not only a
    // clean commit.
    stages.push(Stage {
        name: "publish dry-run".into(),
        redis: false,
        registry: true,
        command: cargo(&["publish", "--workspace", "--dry-run", "--allow-dirty"]),
    });
    stages
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if let Some(extra) = args.first() {
        return Err(format!("test-all takes no arguments, got {extra:?}"));
    }
    let root = root();
    let mut tally = Tally::default();
    let mut failed_stages = Vec::new();
    // Started before the first stage that needs it and dropped (its
    // servers stopped) when this function returns, by any path.
    let mut redis: Option<Result<Redis, String>> = None;
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
        if stage.registry {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), std::path::PathBuf::from);
            match registry::forget_packaged(&target) {
                Ok(removed) if !removed.is_empty() => {
                    println!(
                        "removed what earlier dry-runs left (sources in cargo's home, \
                         build fingerprints): {} entries",
                        removed.len()
                    );
                }
                Ok(_) => {}
                Err(why) => println!("could not clear earlier dry-runs' sources: {why}"),
            }
        }
        if stage.redis {
            let redis = redis.get_or_insert_with(|| {
                println!("\n==> redis");
                Redis::provide()
            });
            match redis {
                Ok(redis) => redis.apply(&mut stage.command),
                Err(why) => {
                    // Never a silent skip: the stage counts as failed.
                    println!("\n==> {}\nnot run: no Redis: {why}", stage.name);
                    tally.failed += 1;
                    failed_stages.push(stage.name.clone());
                    continue;
                }
            }
        }
        println!("\n==> {}", stage.name);
        let before = tally;
        let ok = run::streamed(stage.command, &mut tally)?;
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
