//! The console's sessions, held in memory: a random 256-bit id (the cookie) for each, with its
//! CSRF token and whether it signed in with the API token. A restart signs everyone out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a session lasts from its creation.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; creating one more drops the oldest.
pub(crate) const MAX_SESSIONS: usize = 1000;

/// The browser's session, as handlers see it.
#[derive(Clone)]
pub(crate) struct Session {
    /// The token forms post back (`csrf`).
    pub csrf: String,
    /// Signed in with the API token (false: an anonymous session, no token configured).
    pub(crate) signed_in: bool,
}

struct Entry {
    csrf: String,
    signed_in: bool,
    created: Instant,
}

/// The live sessions. Debug shows how many, never an id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Sessions").field("count", &n).finish()
    }
}

/// 32 random bytes as hex; `None` if the OS has no randomness to give.
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// A new session; its id for the cookie.
    pub(super) fn create(&self, signed_in: bool) -> Option<(String, Session)> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, e| e.created.elapsed() < LIFETIME);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Entry {
                csrf: csrf.clone(),
                signed_in,
                created: Instant::now(),
            },
        );
        Some((id, Session { csrf, signed_in }))
    }

    /// The live session of `id`.
    pub(super) fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.get(id)?;
        if entry.created.elapsed() >= LIFETIME {
            map.remove(id);
            return None;
        }
        Some(Session {
            csrf: entry.csrf.clone(),
            signed_in: entry.signed_in,
        })
    }

    pub(super) fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_bounded_and_found_by_their_id() {
        let sessions = Sessions::default();
        let (a, sa) = sessions.create(true).unwrap();
        let (b, sb) = sessions.create(false).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert!(sessions.get(&a).unwrap().signed_in);
        assert!(!sessions.get(&b).unwrap().signed_in);
        assert!(sessions.get("nope").is_none());
        sessions.remove(&a);
        assert!(sessions.get(&a).is_none());
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.create(false).unwrap();
        }
        assert_eq!(sessions.map.lock().unwrap().len(), MAX_SESSIONS);
        assert!(!format!("{sessions:?}").contains(&b));
    }
}
