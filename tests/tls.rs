//! TLS to the upstream, as with SES's internal CA: a gateway whose certificate chains to the CA
//! in `http.ca_file` is trusted; the same gateway without it is refused, and the error says why.
//! The gateway is a TLS front (rustls) on loopback forwarding to the simulator.

mod common;

use common::*;
use ses_inventory::Inventory::Services;
use ses_inventory::cache::Cache;
use ses_inventory::model::status::Outcome;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// Terminates TLS on a loopback port and forwards each connection to `backend`.
async fn tls_front(backend: SocketAddr, cert: Vec<u8>, key: Vec<u8>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake simply ends the connection, as a real gateway's would.
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Ok(mut upstream) = TcpStream::connect(backend).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_internal_ca_in_ca_file_is_trusted_and_nothing_else() {
    let (sim, sc) = empty_sim().await;
    sim.set_items(Services, services(45));
    let (ca_pem, cert, key) = internal_ca("SES test internal CA");
    let (cert, key) = (cert.der().to_vec(), key.serialize_der());
    let front = tls_front(sim.addr(), cert, key).await;

    let dir = std::env::temp_dir().join(format!("sesinv-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("internal-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();

    let mut cfg = config(&sim, &sc);
    cfg.tmf638.endpoint = format!("https://{front}{}", sc.base638);
    cfg.http.retry_attempts = 1;
    // Exactly two requests (a full page, then the short one) one page at a time; with pages in
    // flight, pages past the end are requested too.
    cfg.poll.pages_in_flight = 1;

    // Without the CA the gateway's certificate is not trusted: the poll fails and says so.
    let cache = Cache::new();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Failed);
    let err = r.error.unwrap().to_lowercase();
    assert!(err.contains("certificate"), "{err}");
    assert!(sim.requests().is_empty(), "nothing reached the upstream");

    // With `http.ca_file` the same gateway is trusted, over HTTPS end to end.
    cfg.http.ca_file = ca_file.display().to_string();
    cfg.validate_timing().unwrap();
    let r = poll(&cfg, Services, &cache, FULL).await;
    assert_eq!(r.outcome, Outcome::Complete, "{:?}", r.error);
    assert_eq!(cache.len(Services), 45);
    assert_eq!(sim.requests().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
