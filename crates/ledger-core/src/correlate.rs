//! Joins the fragments of one call, in whatever order they arrive, and says
//! when the call is whole.
//!
//! A call is keyed by `(dialect, key)`. It is complete when every part its
//! dialect promises has arrived (both halves, every body chunk); otherwise it
//! waits until [`Correlator::expire`] or [`Correlator::drain`] flushes it as
//! partial. azure-monitor calls have no "last part" (the number of LLM log
//! pieces is not announced), so they are always flushed by time; they count
//! as complete when their GatewayLogs record is there.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::dialects::{self, Completeness};
use crate::model::{BodyKind, BodyPart, Dialect, Fragment, Position, Role};

/// A fragment and where its event was.
#[derive(Debug, Clone)]
pub struct Held {
    pub position: Position,
    pub fragment: Fragment,
}

/// The fragments gathered for one call.
#[derive(Debug, Clone)]
pub struct PendingCall {
    pub dialect: Dialect,
    pub key: String,
    pub parts: Vec<Held>,
    /// Stream time of the last fragment, for the timeout.
    pub last_seen: DateTime<Utc>,
    /// Wall-clock time the last fragment was received, for the idle
    /// flush of a live source ([`Correlator::expire_received_before`]).
    pub received: DateTime<Utc>,
    /// The correlator's fragment count at the last fragment.
    last_tick: u64,
}

impl PendingCall {
    /// Lowest sequence number this call still needs, per partition.
    pub fn min_sequence(&self) -> BTreeMap<&str, i64> {
        let mut m: BTreeMap<&str, i64> = BTreeMap::new();
        for h in &self.parts {
            let e = m
                .entry(h.position.partition.as_str())
                .or_insert(h.position.sequence);
            *e = (*e).min(h.position.sequence);
        }
        m
    }

    fn has(&self, role: Role) -> bool {
        self.parts.iter().any(|h| h.fragment.role == role)
    }

    /// True when every part the dialect promises is present.
    pub fn is_complete(&self) -> bool {
        roles_complete(self.dialect, |role| self.has_whole(role), false)
    }

    /// Whether a call flushed by time counts as complete anyway.
    pub fn is_complete_when_flushed(&self) -> bool {
        roles_complete(self.dialect, |role| self.has_whole(role), true)
    }

    /// Whether a part of this role is here with all its body chunks.
    fn has_whole(&self, role: Role) -> bool {
        self.has(role)
            && match role {
                Role::Request => chunks_complete(self.bodies(Role::Request, true)),
                Role::Response => chunks_complete(self.bodies(Role::Response, false)),
                _ => true,
            }
    }

    fn bodies(&self, role: Role, request: bool) -> impl Iterator<Item = &BodyPart> {
        self.parts
            .iter()
            .filter(move |h| h.fragment.role == role)
            .filter_map(move |h| {
                if request {
                    h.fragment.request_body.as_ref()
                } else {
                    h.fragment.response_body.as_ref()
                }
            })
    }
}

/// Whether a call of `dialect` that has the (whole) parts `has` says yes
/// to is complete by its dialect's rule ([`crate::dialects::DIALECTS`]; a
/// dialect missing from the table waits for both halves, the strictest
/// rule). `flushed`: the call was released by time. The correlator and
/// the merge of records committed apart ([`crate::merge`]) both decide
/// completeness here.
pub fn roles_complete(dialect: Dialect, has: impl Fn(Role) -> bool, flushed: bool) -> bool {
    let completeness = dialects::spec(dialect).map_or(Completeness::Halves, |s| s.completeness);
    match completeness {
        Completeness::OneEvent => has(Role::Whole),
        Completeness::GatewayLogWhenFlushed => flushed && has(Role::GatewayLog),
        Completeness::Halves => has(Role::Request) && (has(Role::Response) || has(Role::Error)),
    }
}

/// True when the parts with a known `count` cover indices `0..count`.
fn chunks_complete<'a>(parts: impl Iterator<Item = &'a BodyPart>) -> bool {
    let mut count: Option<u32> = None;
    let mut seen: Vec<u32> = Vec::new();
    for p in parts {
        if p.kind != BodyKind::Http {
            continue;
        }
        if let Some(c) = p.count {
            count = Some(count.map_or(c, |x| x.max(c)));
        }
        seen.push(p.index);
    }
    count.is_none_or(|c| crate::limits::missing_chunks(seen, c) == 0)
}

/// A call the correlator lets go of.
#[derive(Debug, Clone)]
pub struct Released {
    pub call: PendingCall,
    pub complete: bool,
}

/// The join state. Memory is bounded by the calls pending within the
/// timeout and the recently completed keys kept for duplicate detection.
#[derive(Debug)]
pub struct Correlator {
    pending: HashMap<(Dialect, String), PendingCall>,
    /// Keys completed recently: a later exact duplicate of one of their
    /// events is dropped instead of starting a phantom partial call.
    recent: HashMap<u64, (DateTime<Utc>, Vec<u64>)>,
    recent_order: VecDeque<(u64, DateTime<Utc>)>,
    timeout: Duration,
    /// Fragments that must follow a call's last one before it may expire:
    /// one event stamped far ahead (a skewed policy clock) must not flush
    /// every pending call at once.
    min_gap: u64,
    ticks: u64,
    duplicates: u64,
}

/// Completed calls remembered for duplicate detection, at most.
const MAX_RECENT: usize = 500_000;

/// Default for [`Correlator::with_min_gap`].
pub const DEFAULT_MIN_GAP: u64 = 1000;

/// What happened to one fragment.
#[derive(Debug)]
pub enum Outcome {
    /// Held; the call is not yet whole.
    Pending,
    /// The call is whole.
    Complete(Released),
    /// An exact duplicate of a fragment already seen: ignored.
    Duplicate,
}

impl Correlator {
    pub fn new(timeout: Duration) -> Self {
        Correlator {
            pending: HashMap::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            timeout,
            min_gap: DEFAULT_MIN_GAP,
            ticks: 0,
            duplicates: 0,
        }
    }

    pub fn with_min_gap(mut self, min_gap: u64) -> Self {
        self.min_gap = min_gap;
        self
    }

    /// How long a call waits for its missing parts.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn pending(&self) -> impl Iterator<Item = &PendingCall> {
        self.pending.values()
    }

    /// Adds a fragment seen at `now` (stream time), received now too.
    pub fn add(&mut self, position: Position, fragment: Fragment, now: DateTime<Utc>) -> Outcome {
        self.add_received(position, fragment, now, now)
    }

    /// Adds a fragment seen at `now` (stream time) and received at
    /// `received` (wall clock).
    pub fn add_received(
        &mut self,
        position: Position,
        fragment: Fragment,
        now: DateTime<Utc>,
        received: DateTime<Utc>,
    ) -> Outcome {
        self.ticks += 1;
        let id = (fragment.dialect, fragment.key.clone());
        if let Some((_, seen)) = self.recent.get(&id_hash(&id))
            && seen.contains(&fingerprint(&fragment))
        {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        let call = self
            .pending
            .entry(id.clone())
            .or_insert_with(|| PendingCall {
                dialect: fragment.dialect,
                key: fragment.key.clone(),
                parts: Vec::new(),
                last_seen: now,
                received,
                last_tick: 0,
            });
        if call.parts.iter().any(|h| h.fragment == fragment) {
            self.duplicates += 1;
            return Outcome::Duplicate;
        }
        call.parts.push(Held { position, fragment });
        call.last_seen = call.last_seen.max(now);
        call.received = call.received.max(received);
        call.last_tick = self.ticks;
        if !call.is_complete() {
            return Outcome::Pending;
        }
        let Some(call) = self.pending.remove(&id) else {
            return Outcome::Pending;
        };
        self.remember(id, &call, now);
        Outcome::Complete(Released {
            call,
            complete: true,
        })
    }

    fn remember(&mut self, id: (Dialect, String), call: &PendingCall, now: DateTime<Utc>) {
        let prints = call
            .parts
            .iter()
            .map(|h| fingerprint(&h.fragment))
            .collect();
        let id = id_hash(&id);
        self.recent.insert(id, (now, prints));
        self.recent_order.push_back((id, now));
        // Forget completed keys after a week of event time (or twice the
        // timeout, if longer), and beyond a fixed number of keys: memory
        // stays bounded (about 100 bytes a key), and redeliveries come well
        // within that.
        let horizon = now - (self.timeout * 2).max(Duration::days(7));
        while let Some((k, t)) = self.recent_order.front() {
            if *t >= horizon && self.recent_order.len() <= MAX_RECENT {
                break;
            }
            if self.recent.get(k).is_some_and(|(seen, _)| seen == t) {
                self.recent.remove(k);
            }
            self.recent_order.pop_front();
        }
    }

    /// Restarts the timeout of the pending calls `which` selects, as of `now`.
    pub fn refresh(&mut self, mut which: impl FnMut(&PendingCall) -> bool, now: DateTime<Utc>) {
        for c in self.pending.values_mut().filter(|c| which(c)) {
            c.last_seen = c.last_seen.max(now);
            c.last_tick = self.ticks;
        }
    }

    /// Forgets the pending calls `keep` rejects; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&PendingCall) -> bool) -> usize {
        let before = self.pending.len();
        self.pending.retain(|_, c| keep(c));
        before - self.pending.len()
    }

    /// Releases calls not touched within the timeout before `now` (and
    /// followed by at least the minimum gap of fragments).
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<Released> {
        let deadline = now - self.timeout;
        let ids: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, c)| c.last_seen < deadline && self.ticks - c.last_tick >= self.min_gap)
            .map(|(k, _)| k.clone())
            .collect();
        self.release(ids, now)
    }

    /// Releases the calls `which` selects whose last fragment was received
    /// before `cutoff` (wall clock): the idle flush of a live source, where
    /// no later event advances the stream clock. Wall time, unlike an
    /// event's stamp, cannot be skewed by one event, so no minimum gap
    /// applies. `now` is the stream time kept for duplicate detection.
    pub fn expire_received_before(
        &mut self,
        cutoff: DateTime<Utc>,
        mut which: impl FnMut(&PendingCall) -> bool,
        now: DateTime<Utc>,
    ) -> Vec<Released> {
        let ids: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, c)| c.received < cutoff && which(c))
            .map(|(k, _)| k.clone())
            .collect();
        self.release(ids, now)
    }

    /// Releases every pending call (end of an ingest).
    pub fn drain(&mut self, now: DateTime<Utc>) -> Vec<Released> {
        let ids: Vec<_> = self.pending.keys().cloned().collect();
        self.release(ids, now)
    }

    fn release(&mut self, mut ids: Vec<(Dialect, String)>, now: DateTime<Utc>) -> Vec<Released> {
        // Deterministic order, so replays produce the same output.
        ids.sort_by(|a, b| {
            let fa = self.pending.get(a).map(first_sequence);
            let fb = self.pending.get(b).map(first_sequence);
            fa.cmp(&fb).then_with(|| a.1.cmp(&b.1))
        });
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(call) = self.pending.remove(&id) {
                let complete = call.is_complete_when_flushed();
                self.remember(id, &call, now);
                out.push(Released { call, complete });
            }
        }
        out
    }
}

fn id_hash(id: &(Dialect, String)) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// A hash of what makes a fragment the same event (its role, chunk and
/// body text): kept for completed calls instead of the fragments themselves.
fn fingerprint(f: &Fragment) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (f.role as u8).hash(&mut h);
    for b in [
        &f.request_body,
        &f.response_body,
        &f.backend_request_body,
        &f.backend_response_body,
    ] {
        if let Some(b) = b {
            (b.index, b.count, &b.text).hash(&mut h);
        } else {
            0u8.hash(&mut h);
        }
    }
    f.meta.request_time.hash(&mut h);
    f.meta.response_time.hash(&mut h);
    h.finish()
}

fn first_sequence(c: &PendingCall) -> Option<(String, i64)> {
    c.parts
        .iter()
        .map(|h| (h.position.partition.clone(), h.position.sequence))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BodyPart, CallMeta};

    fn frag(role: Role, key: &str, body: Option<BodyPart>) -> Fragment {
        Fragment {
            dialect: Dialect::LedgerV1,
            key: key.into(),
            role,
            meta: CallMeta::default(),
            request_body: if role == Role::Request {
                body.clone()
            } else {
                None
            },
            response_body: if role == Role::Request { None } else { body },
            backend_request_body: None,
            backend_response_body: None,
        }
    }

    fn chunk(i: u32, n: u32, t: &str) -> Option<BodyPart> {
        Some(BodyPart {
            count: Some(n),
            index: i,
            ..BodyPart::whole(t)
        })
    }

    fn pos(s: i64) -> Position {
        Position {
            partition: "0".into(),
            sequence: s,
        }
    }

    #[test]
    fn halves_in_any_order_and_all_chunks() {
        let t = Utc::now();
        let mut c = Correlator::new(Duration::seconds(60));
        assert!(matches!(
            c.add(pos(1), frag(Role::Response, "a", chunk(1, 2, "b")), t),
            Outcome::Pending
        ));
        assert!(matches!(
            c.add(pos(2), frag(Role::Request, "a", chunk(0, 1, "q")), t),
            Outcome::Pending
        ));
        assert!(matches!(
            c.add(pos(3), frag(Role::Response, "a", chunk(1, 2, "b")), t),
            Outcome::Duplicate
        ));
        match c.add(pos(4), frag(Role::Response, "a", chunk(0, 2, "a")), t) {
            Outcome::Complete(r) => {
                assert!(r.complete);
                assert_eq!(r.call.parts.len(), 3);
            }
            other => panic!("expected complete, got {other:?}"),
        }
        assert_eq!(c.pending_len(), 0);
        // A redelivery after completion is recognised too.
        assert!(matches!(
            c.add(pos(5), frag(Role::Request, "a", chunk(0, 1, "q")), t),
            Outcome::Duplicate
        ));
    }

    #[test]
    fn orphans_expire_as_partial() {
        let t = Utc::now();
        let mut c = Correlator::new(Duration::seconds(60)).with_min_gap(0);
        c.add(pos(1), frag(Role::Request, "x", chunk(0, 1, "q")), t);
        assert!(c.expire(t + Duration::seconds(30)).is_empty());
        let out = c.expire(t + Duration::seconds(61));
        assert_eq!(out.len(), 1);
        assert!(!out[0].complete);
    }
}

#[cfg(test)]
mod gap_tests {
    use super::*;
    use crate::model::CallMeta;

    #[test]
    fn one_event_far_ahead_does_not_flush_everything() {
        let t = Utc::now();
        let f = |k: &str, role| Fragment {
            dialect: Dialect::EnterpriseLogging,
            key: k.into(),
            role,
            meta: CallMeta::default(),
            request_body: None,
            response_body: None,
            backend_request_body: None,
            backend_response_body: None,
        };
        let p = |s| Position {
            partition: "0".into(),
            sequence: s,
        };
        let mut c = Correlator::new(Duration::seconds(60)).with_min_gap(3);
        c.add(p(1), f("a", Role::Request), t);
        c.add(p(2), f("b", Role::Request), t + Duration::days(1));
        assert!(
            c.expire(t + Duration::days(1)).is_empty(),
            "too few fragments since"
        );
        c.add(p(3), f("c", Role::Request), t + Duration::days(1));
        c.add(p(4), f("d", Role::Request), t + Duration::days(1));
        let out = c.expire(t + Duration::days(1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].call.key, "a");
    }
}
