//! [`Driver`]: chromedriver on a free port; [`Profile`]: a user-data
//! directory, which outlives the browsers opened on it, as a person's
//! profile outlives a restart; [`Browser`]: one headless Chromium, its
//! pages, cookies and scripts, over WebDriver (fantoccini).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use cookie::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::Error;
use crate::process::{self, Group};

/// chromedriver, running; each [`Driver::open`] starts a browser through it.
#[derive(Debug)]
pub struct Driver {
    _process: Group,
    port: u16,
    chromium: PathBuf,
}

impl Driver {
    /// Starts chromedriver (`CHROMEDRIVER_BIN`, else `chromedriver` on the
    /// `PATH`) on a free port, for Chromium (`CHROMIUM_BIN`, else
    /// `chromium`), and waits until it listens.
    ///
    /// # Errors
    ///
    /// Chromium or chromedriver missing (the message says what to install),
    /// or chromedriver not listening in time.
    pub async fn start() -> Result<Self, Error> {
        let chromium = process::program("CHROMIUM_BIN", "chromium")?;
        let driver = process::program("CHROMEDRIVER_BIN", "chromedriver")?;
        let port = process::free_port()?;
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", driver.display()))?;
        process::listening(port, &mut child, "chromedriver").await?;
        Ok(Self {
            _process: Group { child },
            port,
            chromium,
        })
    }

    /// A new headless Chromium on `profile`, once any browser that had the
    /// profile before has let go of it.
    ///
    /// # Errors
    ///
    /// The profile still held, or the browser not starting.
    pub async fn open(&self, profile: &Profile) -> Result<Browser, Error> {
        let lock = profile.lock();
        process::until("the profile's previous browser to let it go", || {
            !held(&lock)
        })
        .await?;
        let args = [
            "--headless=new".to_owned(),
            // The tests run as root, where Chromium's sandbox refuses to
            // start.
            "--no-sandbox".to_owned(),
            format!("--user-data-dir={}", profile.dir.path().display()),
            // Containers give /dev/shm a few megabytes.
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            // No desktop keyring here: cookies kept on disk under a fixed
            // key, so the next browser on the profile can read them.
            "--password-store=basic".to_owned(),
            // Nothing leaves the machine: no updates, sync or pings.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": args,
            },
            "timeouts": { "pageLoad": process::STARTUP.as_millis() as u64 },
        });
        let Value::Object(capabilities) = capabilities else {
            return Err("capabilities are not a JSON object".into());
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .map_err(|e| format!("chromedriver could not start Chromium: {e}"))?;
        Ok(Browser { client, lock })
    }
}

/// A browser profile: a user-data directory of its own, removed when this
/// drops.
#[derive(Debug)]
pub struct Profile {
    dir: tempfile::TempDir,
}

impl Profile {
    /// A new, empty profile.
    ///
    /// # Errors
    ///
    /// No temporary directory could be made.
    pub fn new() -> Result<Self, Error> {
        tempfile::Builder::new()
            .prefix("session-browser-")
            .tempdir()
            .map(|dir| Self { dir })
            .map_err(|e| format!("could not make a profile directory: {e}"))
    }

    /// The link Chromium holds while it runs on the profile and removes
    /// when it exits cleanly, having written its cookies out.
    fn lock(&self) -> PathBuf {
        self.dir.path().join("SingletonLock")
    }
}

/// Whether the profile lock at `path` is there (a symlink, maybe dangling).
fn held(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// One headless Chromium, driven over WebDriver.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    lock: PathBuf,
}

impl Browser {
    /// Goes to `url` and gives the page's text, as a person would read it.
    ///
    /// # Errors
    ///
    /// The page not loading, or having no body.
    pub async fn text(&self, url: &str) -> Result<String, Error> {
        self.client
            .goto(url)
            .await
            .map_err(|e| format!("going to {url}: {e}"))?;
        let body = self
            .client
            .find(Locator::Css("body"))
            .await
            .map_err(|e| format!("{url} has no body: {e}"))?;
        body.text().await.map_err(|e| format!("reading {url}: {e}"))
    }

    /// The cookies the browser keeps for the current page, with the
    /// attributes it stored (`HttpOnly`, `Secure`, `SameSite`, expiry).
    ///
    /// # Errors
    ///
    /// WebDriver failing to list them.
    pub async fn cookies(&self) -> Result<Vec<Cookie<'static>>, Error> {
        self.client
            .get_all_cookies()
            .await
            .map_err(|e| format!("listing cookies: {e}"))
    }

    /// The cookie named `name` for the current page, if the browser keeps
    /// one.
    ///
    /// # Errors
    ///
    /// As [`Browser::cookies`].
    pub async fn cookie(&self, name: &str) -> Result<Option<Cookie<'static>>, Error> {
        Ok(self.cookies().await?.into_iter().find(|c| c.name() == name))
    }

    /// Runs `script` in the current page, as the page's own scripts run,
    /// and gives what it returns.
    ///
    /// # Errors
    ///
    /// The script throwing, or WebDriver failing to run it.
    pub async fn script(&self, script: &str) -> Result<Value, Error> {
        self.client
            .execute(script, Vec::new())
            .await
            .map_err(|e| format!("running {script:?}: {e}"))
    }

    /// Closes the browser as a person would, and waits until it has exited
    /// and let go of its profile: a clean exit, which writes its
    /// persistent cookies out to the profile.
    ///
    /// # Errors
    ///
    /// WebDriver failing to end the session, or the browser not exiting in
    /// time.
    pub async fn quit(self) -> Result<(), Error> {
        self.client
            .close()
            .await
            .map_err(|e| format!("closing the browser: {e}"))?;
        let lock = self.lock;
        process::until("the browser to exit and release its profile", || {
            !held(&lock)
        })
        .await
    }
}
