//! Starting a server of the run's own, as the Redis, PostgreSQL and
//! MariaDB modules do: a free port, a fresh folder (and the folders of
//! runs that died), a process that dies with this one, its log's tail, and
//! a URL fit to print.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
