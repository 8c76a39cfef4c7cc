//! Fault injection: what a faulty gateway answers, which requests a fault hits, and how many.

use super::hold::Hold;
use crate::{Edit, Inventory};
use std::time::Duration;

/// What the simulator answers instead of (or on top of) a normal page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status (and a `Retry-After` header if given), with a short error body.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// 200 with a body that is not JSON (an HTML error page).
    Malformed,
    /// 200 with a JSON object where the array should be: `{"error": ...}`.
    NotArray,
    /// 200 with a body of about this many bytes: the start of a JSON array that never ends.
    Huge(usize),
    /// 200 with exactly this body (`application/json`): hostile pages a test writes itself,
    /// e.g. a million empty objects or arrays nested far deeper than any parser should follow.
    Body(std::sync::Arc<[u8]>),
    /// Answer normally, after this extra delay.
    Delay(Duration),
    /// 200 with a normal page plus one element that is a number: `[ ..., 42 ]`.
    ElementNotObject,
    /// 200 with only the first `n` elements of the page (the total unchanged): a page short of
    /// the page size although the collection goes on, as a gateway that cut a page would send.
    Short(usize),
    /// The data changes in front of the listing's cursor just before this page is served: of
    /// the items already listed (the pages before this one), `deletes` are deleted and `inserts`
    /// new ones are inserted (see `Dataset::churn`); then the page is served normally.
    Churn { deletes: usize, inserts: usize },
    /// Hold the request until the test releases the [`Hold`], then answer normally.
    Hold(Hold),
    /// Hold the request until the test releases the [`Hold`], then answer with `then`: e.g. a
    /// burst of 429s that all arrived before the first is answered.
    Held { hold: Hold, then: Box<FaultKind> },
    /// Change the request's dataset just before the answer is made (see [`Edit`]), then answer
    /// normally: deletions, insertions and updates at exactly this point of a listing.
    Edit(Edit),
}

/// One injected fault and the requests it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Which inventory's requests; `None` = any.
    pub inventory: Option<Inventory>,
    /// Which page number (as the client numbers pages); `None` = any page.
    pub page: Option<u32>,
    /// Only requests with `updatedDaysAgo` (refresh polls).
    pub refresh_only: bool,
    pub kind: FaultKind,
    /// How many matching requests it affects; `None` = until cleared.
    pub times: Option<u32>,
    /// How many matching requests pass before it starts to apply (they do not count against
    /// `times`): `page: Some(3), skip: 1, times: Some(1)` hits page 3 of the second listing.
    /// Every matching request counts, whichever other fault (if any) applies to it.
    pub skip: u32,
    /// Also applies to single-item GETs (`.../service/{id}`, `.../resource/{id}`); only a
    /// fault without `page` and not `refresh_only` can. Off by default, so page faults never
    /// hit item GETs.
    pub items: bool,
}

impl FaultKind {
    /// An answer with this HTTP status (and a short body), no `Retry-After`.
    pub fn status(code: u16) -> FaultKind {
        FaultKind::Status {
            code,
            retry_after: None,
        }
    }
}

impl Fault {
    /// A fault of `kind` on `inventory`'s page `page` (any page: `None`), `times` times
    /// (until cleared: `None`).
    pub fn on(
        inventory: impl Into<Inventory>,
        page: Option<u32>,
        kind: FaultKind,
        times: Option<u32>,
    ) -> Fault {
        Fault {
            inventory: Some(inventory.into()),
            page,
            times,
            ..Fault::new(kind)
        }
    }

    /// A fault of this kind on every page request, until cleared.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            inventory: None,
            page: None,
            refresh_only: false,
            kind,
            times: None,
            skip: 0,
            items: false,
        }
    }

    /// Whether a request for `inventory`'s `page` (a refresh if `refresh`) is one this fault
    /// targets, ignoring `skip` and how many times are left.
    pub fn matches(&self, inventory: Inventory, page: u32, refresh: bool) -> bool {
        self.inventory.is_none_or(|i| i == inventory)
            && self.page.is_none_or(|p| p == page)
            && (!self.refresh_only || refresh)
    }

    /// Whether a single-item GET in `inventory` is one this fault targets, ignoring `skip` and
    /// how many times are left.
    pub fn matches_item(&self, inventory: Inventory) -> bool {
        self.items
            && self.page.is_none()
            && !self.refresh_only
            && self.inventory.is_none_or(|i| i == inventory)
    }

    /// Parses the CLI form `INVENTORY:PAGE:CODE:TIMES`, e.g. `services:3:504:1000`.
    /// `*` (or `any`) is accepted for INVENTORY, PAGE and TIMES (TIMES `*` = until cleared).
    pub fn parse_cli(spec: &str) -> Result<Fault, String> {
        let bad = |what: &str| {
            format!(
                "invalid --fail `{spec}`: {what} (expected INVENTORY:PAGE:CODE:TIMES, e.g. services:3:504:1000)"
            )
        };
        let parts: Vec<&str> = spec.split(':').map(str::trim).collect();
        let [inv, page, code, times] = parts[..] else {
            return Err(bad("need four fields"));
        };
        let any = |s: &str| s == "*" || s.eq_ignore_ascii_case("any");
        let inventory = if any(inv) {
            None
        } else {
            Some(inv.parse::<Inventory>().map_err(|e| bad(&e.to_string()))?)
        };
        let page = if any(page) {
            None
        } else {
            Some(
                page.parse::<u32>()
                    .map_err(|_| bad("PAGE is not a number"))?,
            )
        };
        let code = code
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=999).contains(c))
            .ok_or_else(|| bad("CODE is not an HTTP status"))?;
        let times = if any(times) {
            None
        } else {
            Some(
                times
                    .parse::<u32>()
                    .map_err(|_| bad("TIMES is not a number"))?,
            )
        };
        Ok(Fault {
            inventory,
            page,
            times,
            ..Fault::new(FaultKind::Status {
                code,
                retry_after: None,
            })
        })
    }
}

/// The injected faults, in injection order.
#[derive(Debug, Default)]
pub(crate) struct FaultList(Vec<Fault>);

impl FaultList {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The fault that applies to this request, if any: a request for `inventory`'s `page`
    /// (`None`: a single-item GET), a refresh if `refresh`. Every matching fault still
    /// skipping counts the request as one skipped; the first matching one done skipping with
    /// times left applies, and counts one of its times. Spent faults are dropped.
    pub(crate) fn take(
        &mut self,
        inventory: Inventory,
        page: Option<u32>,
        refresh: bool,
    ) -> Option<FaultKind> {
        let mut applies = None;
        for (i, f) in self.0.iter_mut().enumerate() {
            let hit = match page {
                Some(p) => f.matches(inventory, p, refresh),
                None => f.matches_item(inventory),
            };
            if !hit || f.times == Some(0) {
                continue;
            }
            if f.skip > 0 {
                f.skip -= 1;
            } else if applies.is_none() {
                applies = Some(i);
            }
        }
        let i = applies?;
        let kind = self.0[i].kind.clone();
        if let Some(t) = self.0[i].times.as_mut() {
            *t -= 1;
            if *t == 0 {
                self.0.remove(i);
            }
        }
        Some(kind)
    }
}

/// An HTML gateway error page: what a proxy in front of the API sends.
pub(crate) const MALFORMED_BODY: &str =
    "<html><head><title>502 Proxy Error</title></head><body><h1>Proxy Error</h1></body></html>";

/// The start of a JSON array, padded to `size` bytes, never closed.
pub(crate) fn huge_body(size: usize) -> Vec<u8> {
    let head = b"[{\"externalId\":\"HUGE-0000001\",\"name\":\"";
    let mut body = vec![b'x'; size.max(head.len())];
    body[..head.len()].copy_from_slice(head);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> FaultKind {
        FaultKind::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn first_matching_fault_applies_and_times_count_down() {
        let mut list = FaultList::default();
        list.push(Fault {
            inventory: Some(Inventory::Services),
            page: Some(2),
            times: Some(2),
            ..Fault::new(status(504))
        });
        list.push(Fault {
            times: Some(1),
            ..Fault::new(status(502))
        });
        list.push(Fault {
            refresh_only: true,
            ..Fault::new(FaultKind::Malformed)
        });

        // Carriers page 2: the first fault does not match, the catch-all does (once).
        assert_eq!(
            list.take(Inventory::Carriers, Some(2), false),
            Some(status(502))
        );
        assert_eq!(list.take(Inventory::Carriers, Some(2), false), None);
        // Services page 2: twice, then spent.
        assert_eq!(
            list.take(Inventory::Services, Some(2), false),
            Some(status(504))
        );
        assert_eq!(list.take(Inventory::Services, Some(1), false), None);
        assert_eq!(
            list.take(Inventory::Services, Some(2), false),
            Some(status(504))
        );
        assert_eq!(list.take(Inventory::Services, Some(2), false), None);
        // Refresh-only fault never runs out.
        for _ in 0..3 {
            assert_eq!(
                list.take(Inventory::Resources, Some(1), true),
                Some(FaultKind::Malformed)
            );
        }
        list.clear();
        assert_eq!(list.take(Inventory::Resources, Some(1), true), None);
    }

    #[test]
    fn zero_times_never_applies() {
        let mut list = FaultList::default();
        list.push(Fault {
            times: Some(0),
            ..Fault::new(status(500))
        });
        assert_eq!(list.take(Inventory::Services, Some(1), false), None);
    }

    #[test]
    fn skipped_requests_pass_and_do_not_count_against_times() {
        let mut list = FaultList::default();
        // Page 3 of the second listing only.
        list.push(Fault {
            page: Some(3),
            skip: 1,
            times: Some(1),
            ..Fault::new(status(504))
        });
        list.push(Fault {
            page: Some(3),
            times: Some(1),
            ..Fault::new(FaultKind::Malformed)
        });
        // The first page 3 passes the skipping fault (counted) and meets the next one.
        assert_eq!(
            list.take(Inventory::Services, Some(3), false),
            Some(FaultKind::Malformed)
        );
        assert_eq!(list.take(Inventory::Services, Some(2), false), None);
        assert_eq!(
            list.take(Inventory::Services, Some(3), false),
            Some(status(504))
        );
        assert_eq!(list.take(Inventory::Services, Some(3), false), None);

        // Skip counts matching requests only; a fault never done skipping never applies.
        list.push(Fault {
            inventory: Some(Inventory::Carriers),
            skip: 2,
            times: None,
            ..Fault::new(status(500))
        });
        assert_eq!(list.take(Inventory::Services, Some(1), false), None);
        assert_eq!(list.take(Inventory::Carriers, Some(1), false), None);
        assert_eq!(list.take(Inventory::Carriers, Some(2), false), None);
        for _ in 0..3 {
            assert_eq!(
                list.take(Inventory::Carriers, Some(3), false),
                Some(status(500))
            );
        }
    }

    #[test]
    fn only_faults_marked_for_items_hit_item_gets() {
        let mut list = FaultList::default();
        list.push(Fault::new(status(502)));
        list.push(Fault {
            inventory: Some(Inventory::Resources),
            page: Some(1),
            items: true,
            ..Fault::new(status(503))
        });
        list.push(Fault {
            refresh_only: true,
            items: true,
            ..Fault::new(status(429))
        });
        assert_eq!(list.take(Inventory::Resources, None, false), None);
        list.clear();
        // A fault for items applies to the pages it matches too; both count as skipped.
        list.push(Fault {
            inventory: Some(Inventory::Resources),
            items: true,
            skip: 2,
            times: Some(2),
            ..Fault::new(FaultKind::NotArray)
        });
        assert_eq!(list.take(Inventory::Resources, Some(2), false), None);
        assert_eq!(list.take(Inventory::Services, None, false), None);
        assert_eq!(list.take(Inventory::Resources, None, false), None);
        assert_eq!(
            list.take(Inventory::Resources, None, false),
            Some(FaultKind::NotArray)
        );
        assert_eq!(
            list.take(Inventory::Resources, Some(1), false),
            Some(FaultKind::NotArray)
        );
        assert_eq!(list.take(Inventory::Resources, None, false), None);
        assert!(
            Fault {
                items: true,
                ..Fault::new(FaultKind::Malformed)
            }
            .matches_item(Inventory::Carriers)
        );
    }

    #[test]
    fn cli_spec_parses_and_errors_name_the_input() {
        let f = Fault::parse_cli("services:3:504:1000").unwrap();
        assert_eq!(
            f,
            Fault {
                inventory: Some(Inventory::Services),
                page: Some(3),
                times: Some(1000),
                ..Fault::new(status(504))
            }
        );
        let f = Fault::parse_cli("*:any:502:*").unwrap();
        assert_eq!((f.inventory, f.page, f.times), (None, None, None));
        for bad in [
            "services:3:504",
            "widgets:1:504:1",
            "services:x:504:1",
            "services:1:42:1",
        ] {
            let e = Fault::parse_cli(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn huge_body_has_the_asked_size() {
        let b = huge_body(100_000);
        assert_eq!(b.len(), 100_000);
        assert!(b.starts_with(b"[{"));
    }
}
