//! The servers a test run talks to: Redis, PostgreSQL and MariaDB, each
//! provided once, the first time a stage needs it, and stopped when the
//! run's [`Services`] is dropped; and `cargo xtask services [COMMAND...]`:
//! one command with all three. How each is started is its own module's,
//! on `launch`.

use std::process::Command;

use crate::launch::command_or;

use crate::mariadb::MariaDb;
use crate::postgres::Postgres;
use crate::redis::Redis;

/// A server some stages need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `REDIS_URL` and `REDIS_CLUSTER_URLS`.
    Redis,
    /// `DATABASE_URL`.
    Postgres,
    /// `MYSQL_URL`.
    MariaDb,
}

impl Service {
    /// Every service: what the stages that test everything need.
    pub(crate) const ALL: &'static [Self] = &[Self::Redis, Self::Postgres, Self::MariaDb];
}

/// The services of one run: each provided (used from the environment or
/// started) the first time [`apply`](Self::apply) asks for it, kept for
/// the stages after, and stopped when this is dropped. A service that
/// could not be provided is not tried again: its error is given to every
/// stage that needs it.
#[derive(Debug, Default)]
pub(crate) struct Services {
    redis: Option<Result<Redis, String>>,
    postgres: Option<Result<Postgres, String>>,
    mariadb: Option<Result<MariaDb, String>>,
}

impl Services {
    /// Gives `cmd` the variables of each service in `needed`, providing
    /// those not provided yet. Fails with why one is missing, as
    /// "no PostgreSQL: ...".
    pub(crate) fn apply(&mut self, needed: &[Service], cmd: &mut Command) -> Result<(), String> {
        for service in needed {
            match service {
                Service::Redis => {
                    provided(&mut self.redis, "redis", "Redis", Redis::provide)?.apply(cmd)
                }
                Service::Postgres => {
                    provided(
                        &mut self.postgres,
                        "postgres",
                        "PostgreSQL",
                        Postgres::provide,
                    )?
                    .apply(cmd);
                }
                Service::MariaDb => {
                    provided(&mut self.mariadb, "mariadb", "MariaDB", MariaDb::provide)?.apply(cmd);
                }
            }
        }
        Ok(())
    }
}

/// What `slot` holds, provided by `provide` (under a `==> heading`) if it
/// holds nothing yet.
fn provided<'a, T>(
    slot: &'a mut Option<Result<T, String>>,
    heading: &str,
    name: &str,
    provide: impl FnOnce() -> Result<T, String>,
) -> Result<&'a T, String> {
    slot.get_or_insert_with(|| {
        println!("\n==> {heading}");
        provide()
    })
    .as_ref()
    .map_err(|why| format!("no {name}: {why}"))
}

/// `cargo xtask services [COMMAND...]`: runs `COMMAND` (default: every
/// test, all features, but the browser's, which need the demo built and
/// `DEMO_BIN`) with Redis, PostgreSQL and MariaDB, then stops what was
/// started.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut services = Services::default();
    let mut cmd = command_or(
        args,
        &[
            "test",
            "--workspace",
            "--exclude",
            crate::BROWSER,
            "--all-features",
            "--all-targets",
        ],
    );
    services.apply(Service::ALL, &mut cmd)?;
    crate::run::checked(cmd)
}
