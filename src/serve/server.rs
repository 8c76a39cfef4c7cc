//! The HTTP server of the read API and the web console: the listener bound at startup, the
//! whole router (health endpoints open, the API behind the token, the console behind its
//! sessions), the access log, and a graceful stop.

use crate::cache::Cache;
use crate::config::{ApiServerConfig, ConfigError};
use crate::mirror::lease::HaStatus;
use crate::model::secret::Secret;
use crate::serve::api::{self, parse_errors, routes};
use crate::serve::console::{self, Sessions};
use crate::serve::state::{ApiState, AppState};
use crate::sync::daemon::{Control, ControlSlot};
use crate::telemetry::events;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long open connections may finish after shutdown before the server is stopped anyway.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("api.listen {addr}: cannot listen: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The listening socket, bound at startup before any upstream request, so that a port already in
/// use stops the daemon at once. `None` inside when the API is off.
pub struct Bound {
    listener: Option<TcpListener>,
    token: Secret,
    ha: Option<watch::Receiver<HaStatus>>,
    store: Option<std::path::PathBuf>,
}

impl Bound {
    /// Binds `api.listen` (nothing when it is empty).
    pub async fn bind(cfg: &ApiServerConfig) -> Result<Bound, ApiError> {
        cfg.validate()?;
        let listener = match cfg.listen_addr()? {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ApiError::Bind { addr, source })?,
            ),
        };
        Ok(Bound {
            listener,
            token: cfg.token.clone(),
            ha: None,
            store: None,
        })
    }

    /// An already bound listener (the demo picks its own port).
    pub fn from_listener(listener: TcpListener, token: Secret) -> Bound {
        Bound {
            listener: Some(listener),
            token,
            ha: None,
            store: None,
        }
    }

    /// The bound address; `None` when the API is off.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The leader/standby role the status reports (`ha.enabled`); `off` without it.
    pub(crate) fn with_ha(mut self, ha: Option<watch::Receiver<HaStatus>>) -> Bound {
        self.ha = ha;
        self
    }

    /// The store's file, where the change log is read (none: the history endpoints say so).
    pub(crate) fn with_store(mut self, store: Option<std::path::PathBuf>) -> Bound {
        self.store = store;
        self
    }

    /// Starts serving on the current runtime; stop with [`Server::shutdown`].
    pub fn serve(self, cache: Cache, control: Control) -> Server {
        self.serve_switchable(cache, Arc::new(RwLock::new(control)))
    }

    /// As [`Bound::serve`], with refresh requests going to whatever control `control` holds
    /// at the time (a standby's pollers come and go with its leader terms).
    pub(crate) fn serve_switchable(self, cache: Cache, control: ControlSlot) -> Server {
        let (stop, stop_rx) = watch::channel(false);
        let Some(listener) = self.listener else {
            return Server {
                addr: None,
                stop,
                task: None,
            };
        };
        let addr = listener.local_addr().ok();
        let token = (!self.token.is_empty()).then_some(self.token);
        if let Some(addr) = addr {
            events::ApiListening {
                addr,
                authenticated: token.is_some(),
            }
            .emit();
        }
        let cache_for_warmer = cache.clone();
        let state = Arc::new(ApiState {
            cache,
            control,
            ha: self.ha,
            token,
            started: Instant::now(),
            started_at: Utc::now(),
            boot: Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            sessions: Sessions::default(),
            store: self.store,
        });
        let app = router(state);
        let warmer = api::warm::spawn(cache_for_warmer, stop_rx.clone());
        let mut graceful = stop_rx;
        let task = tokio::spawn(async move {
            let served = axum::serve(parse_errors::Listener(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = graceful.wait_for(|s| *s).await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(message = "API server failed.", %error);
            }
            let _ = warmer.await;
        });
        Server {
            addr,
            stop,
            task: Some(task),
        }
    }
}

/// The running API server.
pub struct Server {
    addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Where it listens; `None` when the API is off.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Stops accepting, lets open requests finish for up to 5 s, then stops.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// The whole router: health endpoints open, the rest behind the token when there is one.
fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route(routes::STATUS, get(api::status))
        .route(routes::REFRESH, post(api::refresh))
        .route(routes::LIST, get(api::list))
        .route(routes::ITEM, get(api::one))
        .route(routes::CHANGES, get(api::changes))
        .route(routes::HISTORY, get(api::item_history))
        .route(routes::METRICS, get(api::metrics_text))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            api::require_token,
        ));
    Router::new()
        .route(routes::HEALTHZ, get(api::healthz))
        .route(routes::READYZ, get(api::readyz))
        .route(routes::OPENAPI, get(api::openapi_json))
        .merge(guarded)
        .merge(console::routes(state.clone()))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(state)
        // Outermost: every answer is counted and logged (401s and 404s too) and compressed
        // when the client asks for gzip or brotli.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(middleware::from_fn(observe))
}

/// The access log and request metrics of every answer.
async fn observe(request: Request, next: Next) -> Response {
    let began = Instant::now();
    let method = request.method().clone();
    let target = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_string(),
        |p| p.as_str().to_string(),
    );
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    events::ApiRequest {
        method: method.as_str(),
        route: &route,
        target: &target,
        status: response.status().as_u16(),
        duration: began.elapsed(),
    }
    .emit();
    response
}
