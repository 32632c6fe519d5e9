//! The cluster page of `eccmgr` (`Cluster_Page { }`): served over HTTPS with the manager's
//! cluster certificate, logins with the console's users file, data and event stream only for
//! a session; and in a real browser (Debian's chromium, headless, driven over the DevTools
//! protocol, trusting the manager's key only): log in, see every member up, kill -9 a node and
//! watch the page show it down without a reload.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::{converged, eventually, free_port, page_client, topology, users_file, Cluster};

const MANAGER_IP: &str = "127.48.1.10";
const PASSWORD: &str = "page-test-password";

/// One DuraVIP address, recorded only, for the owner column.
const VIP_CONFIG: &str = "cluster {\n  duravip_actuator = \"none\"\n}\nBinding \"vip-1\" {\n  Enable_Duravip = true\n  Bind_Address = \"127.48.200.1\"\n}\n";

/// A manager `mgr` and nodes east1, east2, west1 on 127.48.x.x, the manager serving the page
/// on a free port with `users`; returns the cluster and the page's address.
fn cluster_with_page(port: u16) -> (Cluster, SocketAddr) {
    let mut c = Cluster::new(&topology(48, port, &[("east", 2), ("west", 1)]));
    let users = users_file(&c, "admin", PASSWORD);
    let page: SocketAddr = format!("{MANAGER_IP}:{}", free_port(MANAGER_IP)).parse().expect("address");
    c.set_node_config(VIP_CONFIG);
    c.set_member_config(
        "mgr",
        &format!(
            "Control_Listener {{\n  AuthLoginParameters = [ uri = \"file://{}\" ]\n}}\nCluster_Page {{\n  Listen = \"{page}\"\n}}\n{VIP_CONFIG}",
            users.display()
        ),
    );
    (c, page)
}

/// POSTs the login form (names and passwords here need no escaping).
async fn login(http: &reqwest::Client, url: &str, user: &str, password: &str) -> reqwest::Result<reqwest::Response> {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&password={password}"))
        .send()
        .await
}

#[tokio::test]
async fn logins_are_checked_and_nothing_is_served_without_a_session() {
    let (mut c, page) = cluster_with_page(4881);
    c.start_all();
    converged(&c, 4, Duration::from_secs(30)).await;
    let from = "127.48.1.200".parse().expect("ip");
    let http = page_client(&c, "mgr", page, from);
    let url = |path: &str| format!("https://mgr:{}{path}", page.port());

    // Without a session: the page sends to the login, data and events are refused.
    let r = http.get(url("/")).send().await.expect("GET /");
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().ok()), (303, Some("/login")));
    assert_eq!(http.get(url("/data")).send().await.expect("GET /data").status().as_u16(), 401);
    assert_eq!(http.get(url("/events")).send().await.expect("GET /events").status().as_u16(), 401);
    let forged = http.get(url("/events")).header("cookie", "ecpage=forged").send().await.expect("GET /events");
    assert_eq!(forged.status().as_u16(), 401);

    // A wrong password and an unknown user get the same answer, and no cookie.
    let mut answers = Vec::new();
    for (user, password) in [("admin", "wrong"), ("nobody", PASSWORD)] {
        let r = login(&http, &url("/login"), user, password).await.expect("POST");
        assert!(r.headers().get("set-cookie").is_none());
        answers.push((r.status().as_u16(), r.text().await.expect("body")));
    }
    assert_eq!(answers[0].0, 401);
    assert!(answers[0].1.contains("Wrong user name or password."), "{}", answers[0].1);
    assert_eq!(answers[0], answers[1], "wrong password and unknown user answer alike");
    let log = c.log_text("mgr");
    assert!(log.contains("cluster page login failed peer=127.48.1.200:"), "{log}");
    assert!(!log.contains("wrong\""), "the password is never logged");

    // The right password: a session cookie the browser keeps to this site and from scripts.
    let r = login(&http, &url("/login"), "admin", PASSWORD).await.expect("POST");
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r.headers()["set-cookie"].to_str().expect("cookie").to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().expect("name=value").to_owned();
    // The page follows the manager's view within a moment of it, the DuraVIP owner the
    // nodes reported included.
    let data = eventually("the page's data to show 4 members up and the address's owner", Duration::from_secs(15), || async {
        let r = http.get(url("/data")).header("cookie", &session).send().await.ok()?;
        assert_eq!(r.status().as_u16(), 200);
        let data: serde_json::Value = r.json().await.ok()?;
        let up = data["snapshot"]["members"].as_array()?.iter().filter(|m| m["state"] == "up").count();
        let owner = data["snapshot"]["duravip"][0]["owner"].as_str()?.to_owned();
        (up == 4).then_some((data, owner))
    })
    .await;
    let (data, owner) = data;
    let own = c.ask(&owner, "json cluster duravip show").await.expect("the owner's own view");
    let own: serde_json::Value = serde_json::from_str(&own.body).expect("json");
    assert_eq!(own["vips"][0]["holding"], "held", "{owner} holds what the page says: {own}");
    assert!(data["charts"]["members"].as_str().is_some_and(|svg| svg.starts_with("<svg")), "{data}");
    let events = http.get(url("/events")).header("cookie", &session).send().await.expect("GET /events");
    assert_eq!(events.status().as_u16(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    drop(events);

    // After logging out the session opens nothing.
    let r = http.post(url("/logout")).header("cookie", &session).send().await.expect("POST /logout");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(http.get(url("/data")).header("cookie", &session).send().await.expect("GET").status().as_u16(), 401);

    // A source that keeps failing is held off before its password is even checked.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = login(&http, &url("/login"), "admin", "guess").await.expect("POST");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let other = page_client(&c, "mgr", page, "127.48.1.201".parse().expect("ip"));
    let r = login(&other, &url("/login"), "admin", PASSWORD).await.expect("POST");
    assert_eq!(r.status().as_u16(), 303, "another address is not held off");
}

#[test]
fn a_bad_address_a_busy_port_or_no_users_stop_the_start() {
    let (mut c, page) = cluster_with_page(4882);
    let check = |c: &Cluster| {
        let out = Command::new(env!("CARGO_BIN_EXE_eccmgr"))
            .args(["--check-config", "--name", "mgr", "--segments"])
            .arg(&c.segments)
            .arg("--tls-dir")
            .arg(&c.tls)
            .arg("-c")
            .arg(c.dir.path().join("mgr.conf"))
            .output()
            .expect("run eccmgr");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(check(&c).0, Some(0), "{}", check(&c).1);
    let conf = c.set_member_config("mgr", "Cluster_Page {\n  Listen = \"127.48.1.10\"\n}\n");
    let (code, stderr) = check(&c);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(&format!("{}:2:3: Listen = \"127.48.1.10\" is not an address", conf.display())), "{stderr}");
    c.set_member_config("mgr", &format!("Cluster_Page {{\n  Listen = \"{page}\"\n}}\n"));
    let (code, stderr) = check(&c);
    assert_eq!(code, Some(2));
    assert!(stderr.contains(":1:1: Cluster_Page needs users to log in"), "{stderr}");

    // A users file that is not there: the start stops, naming it.
    let missing = c.dir.path().join("no-such-users");
    c.set_member_config(
        "mgr",
        &format!("Cluster_Page {{\n  Listen = \"{page}\"\n  AuthLoginParameters = [ uri = \"file://{}\" ]\n}}\n", missing.display()),
    );
    c.start("mgr");
    let status = c.procs.get_mut("mgr").expect("mgr").child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    c.procs.remove("mgr");
    let log = c.log_text("mgr");
    assert!(log.contains(&format!("{}: no such users file", missing.display())), "{log}");

    // The port taken by another program: the start stops, naming the address.
    let users = users_file(&c, "admin", PASSWORD);
    c.set_member_config(
        "mgr",
        &format!("Cluster_Page {{\n  Listen = \"{page}\"\n  AuthLoginParameters = [ uri = \"file://{}\" ]\n}}\n", users.display()),
    );
    let _taken = std::net::TcpListener::bind(page).expect("take the port");
    c.start("mgr");
    let status = c.procs.get_mut("mgr").expect("mgr").child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    c.procs.remove("mgr");
    let log = c.log_text("mgr");
    assert!(log.contains(&format!("cannot listen on {page} for the cluster page")), "{log}");
}

mod browser {
    //! The page in chromium. `ECCLUSTER_PAGE_SCREENSHOT=FILE` saves a screenshot of the page
    //! (the README's `docs/cluster-page.png` is made so).

    use std::ffi::OsStr;
    use std::time::Duration;

    use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
    use headless_chrome::{Browser, LaunchOptions};

    use super::{cluster_with_page, PASSWORD};
    use crate::support::converged;

    const CHROMIUM: &str = "/usr/bin/chromium";
    /// How long the page may take to show a change (SWIM declares a killed node down within a
    /// few seconds; the page is pushed within a second of the manager's view).
    const DEADLINE: Duration = Duration::from_secs(30);

    #[test]
    fn the_page_shows_a_killed_node_down_without_a_reload() {
        assert!(std::path::Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: apt-get install chromium");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let (mut c, page) = cluster_with_page(4883);
        c.start_all();
        rt.block_on(converged(&c, 4, Duration::from_secs(30)));
        rt.block_on(async {
            let reply = c.ask("mgr", "broadcast version").await.expect("broadcast");
            assert_eq!(reply.status, eccluster::console::frame::Status::Ok, "{}", reply.body);
        });

        // Trust the manager's key and nothing else; reach it by the name its certificate has.
        let tls = eccluster::tls::TlsIdentity::load(&c.tls, "mgr").expect("mgr identity");
        let spki = format!("--ignore-certificate-errors-spki-list={}", tls.spki_sha256().expect("spki"));
        let resolve = format!("--host-resolver-rules=MAP mgr {}", page.ip());
        let args: Vec<&OsStr> = vec![OsStr::new(&spki), OsStr::new(&resolve)];
        let browser = Browser::new(
            LaunchOptions::default_builder()
                .path(Some(CHROMIUM.into()))
                .headless(true)
                .sandbox(false)
                .ignore_certificate_errors(false)
                .window_size(Some((1400, 1300)))
                .args(args)
                .build()
                .expect("launch options"),
        )
        .expect("start chromium");
        let tab = browser.new_tab().expect("a tab");
        tab.set_default_timeout(DEADLINE);
        tab.navigate_to(&format!("https://mgr:{}/", page.port())).expect("navigate");
        tab.wait_until_navigated().expect("the login page");

        // A wrong password is refused on the form.
        tab.wait_for_element("#user").expect("user field").click().expect("click");
        tab.type_str("admin").expect("type");
        tab.wait_for_element("#password").expect("password field").click().expect("click");
        tab.type_str("not-the-password").expect("type");
        tab.wait_for_element("#login").expect("button").click().expect("submit");
        tab.wait_until_navigated().expect("answer");
        let message = tab.wait_for_element("#message").expect("message").get_inner_text().expect("text");
        assert_eq!(message, "Wrong user name or password.");

        tab.wait_for_element("#user").expect("user field").click().expect("click");
        tab.type_str("admin").expect("type");
        tab.wait_for_element("#password").expect("password field").click().expect("click");
        tab.type_str(PASSWORD).expect("type");
        tab.wait_for_element("#login").expect("button").click().expect("submit");
        tab.wait_until_navigated().expect("the page");

        for member in ["mgr", "east1", "east2", "west1"] {
            let selector = format!("tr[data-member=\"{member}\"][data-state=\"up\"]");
            tab.wait_for_element_with_custom_timeout(&selector, DEADLINE)
                .unwrap_or_else(|e| panic!("{member} up on the page: {e}"));
        }
        tab.wait_for_element("tr[data-node=\"west1\"][data-status=\"ok\"]").expect("the broadcast's answers");
        // The DuraVIP address's owner, as the nodes reported it to the manager.
        let owner = tab
            .wait_for_element_with_custom_timeout("tr[data-vip=\"127.48.200.1\"][data-owner] td:nth-child(3)", DEADLINE)
            .expect("the address's owner on the page")
            .get_inner_text()
            .expect("text");
        assert!(["east1", "east2", "west1"].contains(&owner.as_str()), "owner cell {owner:?}");
        // A mark that a reload would wipe.
        tab.evaluate("window.stillTheSamePage = 42", false).expect("mark the page");

        c.kill9("east2");
        tab.wait_for_element_with_custom_timeout("tr[data-member=\"east2\"][data-state=\"down\"]", DEADLINE)
            .expect("east2 down on the page");
        let mark = tab.evaluate("window.stillTheSamePage", false).expect("read the mark");
        assert_eq!(mark.value, Some(serde_json::json!(42)), "the page was reloaded");
        tab.wait_for_element("tr[data-member=\"east1\"][data-state=\"up\"]").expect("east1 still up");

        if let Some(path) = std::env::var_os("ECCLUSTER_PAGE_SCREENSHOT") {
            let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).expect("screenshot");
            std::fs::write(&path, png).expect("write the screenshot");
        }
    }
}
