//! The upstream's dialect: which URL asks for a page.

use super::{PageRequest, Upstream};

impl Upstream {
    /// The request URL with its query, as logged and shown in errors.
    pub fn url(&self, req: PageRequest) -> reqwest::Url {
        let inv_cfg = self.cfg.inventory(req.inventory);
        let base = format!(
            "{}{}",
            self.target(req.inventory.api()).endpoint,
            inv_cfg.path
        );
        let mut url = reqwest::Url::parse(&base).expect("endpoint validated by configuration");
        {
            let poll = &self.cfg.poll;
            let mut q = url.query_pairs_mut();
            for (k, v) in &inv_cfg.query {
                q.append_pair(k, v);
            }
            if let Some(n) = req.days_ago {
                q.append_pair(&poll.updated_days_ago_param, &n.to_string());
            }
            q.append_pair(&poll.page_size_param, &poll.records_per_page.to_string());
            q.append_pair(&poll.page_param, &req.page.to_string());
        }
        // `@` is legal in a query (RFC 3986) and is how the dialect spells `@type`; keep it literal
        // rather than form-encoded, so the request reads like the connector's.
        let query = url.query().map(|q| q.replace("%40", "@"));
        url.set_query(query.as_deref());
        url
    }
}
