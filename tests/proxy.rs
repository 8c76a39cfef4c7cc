//! Proxy settings, as an operator sets them: the standard environment variables, and
//! `http.bypass_proxy` (the connector's "BypassProxy") to ignore them.

mod common;

use ses_inventory_sim::{SimConfig, Simulator};

fn sync_once(sim: &Simulator, sc: &SimConfig, proxy: &str, bypass: bool) -> std::process::Output {
    common::binary(sim, sc)
        .arg("sync-once")
        .env("SES_INVENTORY__HTTP__RETRY_ATTEMPTS", "1")
        .env("SES_INVENTORY__HTTP__BYPASS_PROXY", bypass.to_string())
        .env("HTTP_PROXY", proxy)
        .env("http_proxy", proxy)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_environment_is_honoured_unless_bypassed() {
    let sc = SimConfig::empty();
    let sim = Simulator::start(sc.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    // A proxy address where nothing listens: a port held for this test, not listening.
    let (_held, dead) = common::closed_port();
    let proxy = format!("http://{dead}");

    let sim_ref = &sim;
    let through_proxy = tokio::task::block_in_place(|| sync_once(sim_ref, &sc, &proxy, false));
    assert_eq!(through_proxy.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&through_proxy.stdout).unwrap();
    assert_eq!(summary["services"]["outcome"], "failed");
    assert!(
        sim.requests().is_empty(),
        "the requests went to the proxy, not straight to the upstream"
    );

    let bypassed = tokio::task::block_in_place(|| sync_once(sim_ref, &sc, &proxy, true));
    assert!(
        bypassed.status.success(),
        "{}",
        String::from_utf8_lossy(&bypassed.stderr)
    );
    assert_eq!(
        sim.requests().len(),
        3,
        "one page per inventory, straight to the upstream"
    );
}
