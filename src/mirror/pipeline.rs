//! Pipelined JetStream publishes: up to `max` messages in flight, their acknowledgements awaited
//! in order, so a poll of thousands of items costs a few round trips, not thousands.

use super::lease::Fence;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture};
use std::collections::VecDeque;
use std::time::Duration;

/// How long one publish may wait for the client's send buffer (full while disconnected).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A publish that failed: what was being written and why (never a credential).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub(crate) struct WriteError {
    pub what: String,
    pub(crate) detail: String,
}

impl WriteError {
    pub fn new(what: impl Into<String>, detail: impl std::fmt::Display) -> WriteError {
        WriteError {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// What a tagged message was: the index of its inventory and its KV key.
pub(crate) type Tag = (usize, String);

pub(crate) struct Pipeline {
    js: jetstream::Context,
    /// The connection `js` sends on, whose state is checked before each send.
    client: async_nats::Client,
    pending: VecDeque<(String, PublishAckFuture, Option<Tag>)>,
    /// The revisions of tagged messages acknowledged since the last [`Pipeline::take_revisions`].
    revisions: Vec<(Tag, u64)>,
    max: usize,
    /// Messages acknowledged since the last [`Pipeline::flush`].
    pub(crate) acked: u64,
    /// With `ha.enabled`: nothing is sent once this instance's lease term is over.
    fence: Option<Fence>,
}

impl Pipeline {
    pub fn new(js: jetstream::Context, max: usize, fence: Option<Fence>) -> Pipeline {
        Pipeline {
            client: js.client(),
            js,
            pending: VecDeque::new(),
            revisions: Vec::new(),
            max: max.max(1),
            acked: 0,
            fence,
        }
    }

    /// Sends one message; waits only for the oldest acknowledgement when `max` are in flight.
    pub(crate) async fn publish(
        &mut self,
        subject: String,
        headers: HeaderMap,
        payload: Vec<u8>,
    ) -> Result<(), WriteError> {
        self.publish_tagged(subject, headers, payload, None).await
    }

    /// As [`Pipeline::publish`]; the revision the message gets is kept under `tag`.
    pub(crate) async fn publish_tagged(
        &mut self,
        subject: String,
        headers: HeaderMap,
        payload: Vec<u8>,
        tag: Option<Tag>,
    ) -> Result<(), WriteError> {
        while self.pending.len() >= self.max {
            self.await_oldest().await?;
        }
        // Checked right before each send: a leader paused past its term (SIGSTOP, a stalled
        // VM) finds its term over when it wakes and sends nothing more.
        if self.fence.as_ref().is_some_and(|f| f.revision().is_none()) {
            return Err(WriteError::new(
                format!("publish to {subject}"),
                "refused: this instance no longer holds the leader lease",
            ));
        }
        // And only onto a live connection: the client keeps what it is given while
        // disconnected and sends it once it reconnects, however late that is, so a leader cut
        // off from NATS past its term would write when the link heals, over its successor's
        // term. (What the client already held when the link broke, and bytes the network
        // delivers late, are left to the server's revision checks and to `Ses-Lease-Revision`.)
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(WriteError::new(
                format!("publish to {subject}"),
                "refused: not connected to NATS",
            ));
        }
        let send = self
            .js
            .publish_with_headers(subject.clone(), headers, payload.into());
        let ack = match tokio::time::timeout(SEND_TIMEOUT, send).await {
            Ok(Ok(ack)) => ack,
            Ok(Err(e)) => return Err(WriteError::new(format!("publish to {subject}"), e)),
            Err(_) => {
                return Err(WriteError::new(
                    format!("publish to {subject}"),
                    "timed out: the NATS connection is not taking messages",
                ));
            }
        };
        self.pending.push_back((subject, ack, tag));
        Ok(())
    }

    async fn await_oldest(&mut self) -> Result<(), WriteError> {
        if let Some((subject, ack, tag)) = self.pending.pop_front() {
            let ack = ack
                .await
                .map_err(|e| WriteError::new(format!("acknowledgement of {subject}"), e))?;
            if let Some(tag) = tag {
                self.revisions.push((tag, ack.sequence));
            }
            self.acked += 1;
        }
        Ok(())
    }

    /// The revisions of the tagged messages acknowledged so far.
    pub(crate) fn take_revisions(&mut self) -> Vec<(Tag, u64)> {
        std::mem::take(&mut self.revisions)
    }

    /// Waits for every acknowledgement; the first failure is returned (the rest are dropped).
    pub async fn flush(&mut self) -> Result<u64, WriteError> {
        let result = async {
            while !self.pending.is_empty() {
                self.await_oldest().await?;
            }
            Ok(())
        }
        .await;
        self.pending.clear();
        let acked = std::mem::take(&mut self.acked);
        result.map(|()| acked)
    }
}
