//! The servers a test run talks to: Redis, PostgreSQL and MariaDB, each
//! provided once, the first time a stage needs it, and stopped when the
//! run's [`Services`] is dropped. Also what their modules share (a free
//! port, a fresh folder, a server that dies with us, a log's tail), and
//! `cargo xtask services [COMMAND...]`: one command with all three.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
/// test, all features) with Redis, PostgreSQL and MariaDB, then stops what
/// was started.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut services = Services::default();
    let mut cmd = command_or(
        args,
        &["test", "--workspace", "--all-features", "--all-targets"],
    );
    services.apply(Service::ALL, &mut cmd)?;
    crate::run::checked(cmd)
}

/// The command `args` names, or, when they are empty, cargo in the
/// workspace with `default`.
pub(crate) fn command_or(args: &[String], default: &[&str]) -> Command {
    match args.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest);
            cmd
        }
        None => {
            let mut cmd = crate::run::cargo(&crate::root());
            cmd.args(default);
            cmd
        }
    }
}

/// The variable `name`, unless it is unset or blank.
pub(crate) fn given(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// What `id ARGS` prints, as a number (`id -u`: our user id; `id -u
/// NAME`: that account's); `None` if it fails.
pub(crate) fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// `program`, started so that it gets `signal` if this process dies
/// without stopping it (killed, or Ctrl-C, which mariadbd ignores) instead
/// of running on with nobody to stop it; and, given `ids` (a user and a
/// group id), run as that account. Through `setpriv` (util-linux), which
/// becomes the program (where `runuser` would stay as its parent), so the
/// child we hold, and signal, is the server itself. Where there is no
/// `setpriv` (not Linux) and no `ids`, the program alone.
pub(crate) fn guarded(program: &Path, signal: &str, ids: Option<(u32, u32)>) -> Command {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("setpriv").is_file()));
    if !on_path && ids.is_none() {
        return Command::new(program);
    }
    let mut cmd = Command::new("setpriv");
    if let Some((uid, gid)) = ids {
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups");
    }
    cmd.args(["--pdeathsig", signal, "--"]).arg(program);
    cmd
}

/// A folder of our own under the temporary directory, empty when made and
/// removed with all it holds on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// `sessions-xtask-<kind>-<our pid>-<port>`: a name no other run and no
    /// other server of this run uses. One left by an earlier process with
    /// the same pid is removed first.
    pub(crate) fn fresh(kind: &str, port: u16) -> Result<Self, String> {
        sweep(kind);
        let dir = std::env::temp_dir().join(format!(
            "sessions-xtask-{kind}-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "creating {}: {e} (set TMPDIR to a folder you can write to)",
                dir.display()
            )
        })?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the `sessions-xtask-<kind>-<pid>-<port>` folders of runs that
/// died without cleaning up (killed, or stopped by Ctrl-C): a server's
/// data is tens of megabytes. Only where `/proc` says that pid is gone or
/// a zombie; their servers died with them (see [`guarded`]).
fn sweep(kind: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let prefix = format!("sessions-xtask-{kind}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !alive(pid)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The last lines of a server's log, for error messages.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = match std::fs::read_to_string(log) {
        Ok(text) => text,
        Err(e) => return format!("({} could not be read: {e})", log.display()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(20);
    let tail = lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n");
    let name = log.file_name().unwrap_or(log.as_os_str()).to_string_lossy();
    format!("end of {name}:\n{tail}")
}

/// `url` with its password, if it has one, replaced by `***`: for the
/// URLs we print, which may come from the environment.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some((authority, path)) = rest.split_at_checked(end) else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// Whether process `pid` runs: not gone, nor a zombie left unreaped.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // `pid (name) state ...`; the name may hold spaces and parentheses.
        stat.rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact("postgres://app:s3cr@t@db.example:5433/sessions?sslmode=require"),
            "postgres://app:***@db.example:5433/sessions?sslmode=require"
        );
        assert_eq!(
            redact("mysql://root@127.0.0.1:40000/sessions_test"),
            "mysql://root@127.0.0.1:40000/sessions_test"
        );
        assert_eq!(
            redact("postgres://127.0.0.1/db@home"),
            "postgres://127.0.0.1/db@home"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
