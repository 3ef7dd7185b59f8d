//! The demo in headless Chromium: what a browser stores of the session
//! cookie, a flash shown once, the cookie hidden from page scripts, a
//! remembered login across a browser restart (and a browser-session login
//! not), and "log out everywhere" from a second profile.
//!
//! Needs `DEMO_BIN` (`cargo build -p http-sessions --example demo`) and
//! Chromium with chromedriver (`apt-get install chromium chromium-driver`);
//! `cargo xtask test-all` provides the first and says so of the second.

use cookie::SameSite;
use session_browser::{Browser, Demo, Driver, Error, Profile};

/// The cookie's default name over plain http.
const PLAIN_NAME: &str = "session";

/// The default name of a `Secure` cookie with path `/` and no domain: the
/// `__Host-` prefix, which a browser accepts only with those attributes.
const HOST_NAME: &str = "__Host-session";

/// chromedriver, the demo, and a browser on a profile of its own.
async fn start(demo: Demo) -> Result<(Driver, Demo, Browser, Profile), Error> {
    let driver = Driver::start().await?;
    let profile = Profile::new()?;
    let browser = driver.open(&profile).await?;
    Ok((driver, demo, browser, profile))
}

#[tokio::test]
async fn login_cookie_is_http_only_lax_and_secure_host_prefixed_on_localhost() -> Result<(), Error>
{
    let (_driver, demo, browser, _profile) = start(Demo::start_with_secure_cookie().await?).await?;
    assert_eq!(browser.text(&demo.url("/login")).await?, "Hello, Prologue!");
    let cookies = browser.cookies().await?;
    let names: Vec<&str> = cookies.iter().map(|c| c.name()).collect();
    let Some(cookie) = cookies.iter().find(|c| c.name() == HOST_NAME) else {
        return Err(format!(
            "no {HOST_NAME} cookie after /login; the browser keeps {names:?}"
        ));
    };
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly: {cookie:?}");
    assert_eq!(cookie.secure(), Some(true), "Secure: {cookie:?}");
    assert_eq!(
        cookie.same_site(),
        Some(SameSite::Lax),
        "SameSite: {cookie:?}"
    );
    assert_eq!(cookie.path(), Some("/"), "{cookie:?}");
    // And the browser sends it back to http://localhost.
    assert_eq!(
        browser.text(&demo.url("/logout")).await?,
        "{flywind: 123, ordontfly: 345}"
    );
    browser.quit().await
}

#[tokio::test]
async fn plain_http_login_cookie_is_http_only_lax_and_not_secure() -> Result<(), Error> {
    let (_driver, demo, browser, _profile) = start(Demo::start().await?).await?;
    assert_eq!(browser.text(&demo.url("/login")).await?, "Hello, Prologue!");
    let Some(cookie) = browser.cookie(PLAIN_NAME).await? else {
        return Err(format!("no {PLAIN_NAME} cookie after /login"));
    };
    assert_eq!(cookie.http_only(), Some(true), "HttpOnly: {cookie:?}");
    assert_eq!(cookie.secure(), Some(false), "Secure: {cookie:?}");
    assert_eq!(
        cookie.same_site(),
        Some(SameSite::Lax),
        "SameSite: {cookie:?}"
    );
    assert_eq!(
        browser.text(&demo.url("/logout")).await?,
        "{flywind: 123, ordontfly: 345}"
    );
    browser.quit().await
}

#[tokio::test]
async fn flash_is_shown_once_then_the_page_returns_to_normal() -> Result<(), Error> {
    let (_driver, demo, browser, _profile) = start(Demo::start().await?).await?;
    assert_eq!(browser.text(&demo.url("/hello")).await?, "Hello, world");
    assert_eq!(
        browser.text(&demo.url("/tea")).await?,
        "Please retry again!"
    );
    assert_eq!(browser.text(&demo.url("/tea")).await?, "My tea");
    assert_eq!(browser.text(&demo.url("/tea")).await?, "My tea");
    browser.quit().await
}

#[tokio::test]
async fn page_scripts_cannot_read_the_session_cookie() -> Result<(), Error> {
    let (_driver, demo, browser, _profile) = start(Demo::start().await?).await?;
    assert_eq!(browser.text(&demo.url("/login")).await?, "Hello, Prologue!");
    if browser.cookie(PLAIN_NAME).await?.is_none() {
        return Err(format!("no {PLAIN_NAME} cookie after /login"));
    }
    // A cookie a script may see, set by the page itself, shows that
    // `document.cookie` works here; the session's is not in it.
    let seen = browser
        .script("document.cookie = 'visible=1; path=/'; return document.cookie;")
        .await?;
    let seen = seen.as_str().unwrap_or_default();
    assert!(seen.contains("visible=1"), "document.cookie = {seen:?}");
    assert!(
        !seen.contains(&format!("{PLAIN_NAME}=")),
        "document.cookie = {seen:?}"
    );
    // And the session still works: the browser sends what scripts cannot
    // read.
    assert_eq!(
        browser.text(&demo.url("/logout")).await?,
        "{flywind: 123, ordontfly: 345}"
    );
    browser.quit().await
}

#[tokio::test]
async fn remembered_login_survives_a_browser_restart() -> Result<(), Error> {
    let (driver, demo, browser, profile) = start(Demo::start().await?).await?;
    assert_eq!(
        browser.text(&demo.url("/remember")).await?,
        "demo is remembered for 30 days"
    );
    let Some(cookie) = browser.cookie(PLAIN_NAME).await? else {
        return Err(format!("no {PLAIN_NAME} cookie after /remember"));
    };
    assert!(
        cookie.expires().is_some(),
        "a persistent cookie: {cookie:?}"
    );
    browser.quit().await?;

    let browser = driver.open(&profile).await?;
    assert_eq!(
        browser.text(&demo.url("/whoami")).await?,
        "signed in as demo"
    );
    browser.quit().await
}

#[tokio::test]
async fn browser_session_login_ends_with_a_browser_restart() -> Result<(), Error> {
    let (driver, demo, browser, profile) = start(Demo::start().await?).await?;
    assert_eq!(
        browser.text(&demo.url("/signin")).await?,
        "demo is signed in until the browser closes"
    );
    assert_eq!(
        browser.text(&demo.url("/whoami")).await?,
        "signed in as demo"
    );
    let Some(cookie) = browser.cookie(PLAIN_NAME).await? else {
        return Err(format!("no {PLAIN_NAME} cookie after /signin"));
    };
    assert!(
        cookie.expires().is_none(),
        "a browser-session cookie: {cookie:?}"
    );
    browser.quit().await?;

    let browser = driver.open(&profile).await?;
    assert_eq!(browser.text(&demo.url("/whoami")).await?, "not signed in");
    assert_eq!(browser.cookie(PLAIN_NAME).await?, None);
    browser.quit().await
}

#[tokio::test]
async fn logout_everywhere_from_a_second_profile_signs_the_first_out() -> Result<(), Error> {
    let (driver, demo, first, _first_profile) = start(Demo::start().await?).await?;
    let second_profile = Profile::new()?;
    let second = driver.open(&second_profile).await?;
    for browser in [&first, &second] {
        assert_eq!(
            browser.text(&demo.url("/remember")).await?,
            "demo is remembered for 30 days"
        );
    }
    assert_eq!(first.text(&demo.url("/whoami")).await?, "signed in as demo");
    assert_eq!(
        second.text(&demo.url("/logout-everywhere")).await?,
        "ended 2 sessions of demo"
    );
    assert_eq!(second.text(&demo.url("/whoami")).await?, "not signed in");
    // The first browser still holds its cookie; at its next page the
    // server no longer has the session behind it.
    if first.cookie(PLAIN_NAME).await?.is_none() {
        return Err(format!("the first browser lost its {PLAIN_NAME} cookie"));
    }
    assert_eq!(first.text(&demo.url("/whoami")).await?, "not signed in");
    assert_eq!(
        first.text(&demo.url("/sessions")).await?,
        "not signed in: /remember first"
    );
    first.quit().await?;
    second.quit().await
}
