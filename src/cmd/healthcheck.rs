//! `ses-inventory healthcheck`: asks the running daemon's `/healthz` whether it serves, for
//! container runtimes (Docker's `HEALTHCHECK`) that have no curl or shell to do it with.

use crate::config::ApiServerConfig;
use crate::source::error_chain;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Why the daemon is not considered healthy. Each names what was tried.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("api.listen is empty: the API is off, so there is no /healthz to ask")]
    ApiOff,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{url}: no answer: {error}")]
    Unreachable { url: String, error: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
}

/// The URL of `/healthz` for the API's listen address. An unspecified address (`0.0.0.0`,
/// `[::]`) is asked on the loopback of the same family.
pub(crate) fn healthz_url(api: &ApiServerConfig) -> Result<String, HealthError> {
    let listen = api.listen.trim();
    if listen.is_empty() {
        return Err(HealthError::ApiOff);
    }
    // A host name (`localhost:9638`) is used as it is.
    let Ok(mut addr) = listen.parse::<SocketAddr>() else {
        return Ok(format!("http://{listen}/healthz"));
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(format!("http://{addr}/healthz"))
}

/// GETs `url` once, within `timeout`, ignoring any proxy settings. Ok with the URL on a 200.
pub async fn check(url: &str, timeout: Duration) -> Result<(), HealthError> {
    // The client wants a TLS provider even for plain HTTP; the daemon installs the same one.
    crate::source::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| HealthError::Client(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| HealthError::Unreachable {
            url: url.to_string(),
            error: error_chain(&e),
        })?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(HealthError::Status {
            url: url.to_string(),
            status,
        }),
    }
}

/// The command: prints what it found and exits 0 on 200, 1 otherwise.
pub async fn command(cfg: &crate::config::Config, timeout: Duration) -> std::process::ExitCode {
    let result = match healthz_url(&cfg.api) {
        Ok(url) => check(&url, timeout).await.map(|()| url),
        Err(e) => Err(e),
    };
    match result {
        Ok(url) => {
            println!("healthy: {url} answered 200");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(listen: &str) -> ApiServerConfig {
        let mut api = crate::config::Config::defaults().api;
        api.listen = listen.into();
        api
    }

    #[test]
    fn the_url_follows_api_listen() {
        assert_eq!(
            healthz_url(&api("127.0.0.1:9638")).unwrap(),
            "http://127.0.0.1:9638/healthz"
        );
        assert_eq!(
            healthz_url(&api("0.0.0.0:9000")).unwrap(),
            "http://127.0.0.1:9000/healthz"
        );
        assert_eq!(
            healthz_url(&api("[::]:9638")).unwrap(),
            "http://[::1]:9638/healthz"
        );
        assert!(matches!(healthz_url(&api("")), Err(HealthError::ApiOff)));
        assert_eq!(
            healthz_url(&api("localhost:9638")).unwrap(),
            "http://localhost:9638/healthz"
        );
    }
}
