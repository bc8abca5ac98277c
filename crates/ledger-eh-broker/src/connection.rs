//! Connections, sessions and links: what each attach means and how the
//! broker serves it.
//!
//! One task per connection accepts sessions, one per session accepts links,
//! one per link serves it. Request/reply nodes (`$cbs`, `$management`) reply
//! on the client's receiver link whose target is the request's `reply-to`
//! (Rust) or, when there is none (Python's CBS), on the connection's link
//! from that node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fe2o3_amqp::acceptor::{
    ConnectionAcceptor, LinkAcceptor, LinkEndpoint, ListenerConnectionHandle,
    ListenerSessionHandle, SessionAcceptor, SupportedReceiverSettleModes,
    SupportedSenderSettleModes,
    sasl_acceptor::{SaslAcceptor, SaslServerFrame},
};
use fe2o3_amqp::link::delivery::Sendable;
use fe2o3_amqp::types::definitions::{
    self, AmqpError, ErrorCondition, LinkError, ReceiverSettleMode, Role, SenderSettleMode,
};
use fe2o3_amqp::types::messaging::message::__private::{Deserializable, Serializable};
use fe2o3_amqp::types::messaging::{
    AmqpValue, ApplicationProperties, Body, Data, Message, MessageAnnotations, Properties,
    annotations::OwnedKey,
};
use fe2o3_amqp::types::performatives::Attach;
use fe2o3_amqp::types::primitives::{Array, OrderedMap, SimpleValue, Symbol, Timestamp, Value};
use fe2o3_amqp::types::sasl::{SaslCode, SaslInit, SaslOutcome, SaslResponse};
use fe2o3_amqp::{Receiver, Sender};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::address::{self, Node, StartPosition};
use crate::auth::ConnectionTokens;
use crate::store::{StoredEvent, now_ms};
use crate::{BrokerError, Faults, Hub, ReaderSlot, Shared, wire};

/// The message format of a batch: each Data section is one encoded message.
const BATCH_FORMAT: u32 = 0x8001_3700;
/// Everything the broker sends to a client goes settled (its sending links
/// attach as `settled`). Event Hubs has no per-event acknowledgement, and the
/// Python client never settles what it receives, so a delivery that waited
/// for its outcome would stall the link.
const PRESETTLED: bool = true;
/// Readers send up to this many events before looking for new ones.
const READ_CHUNK: usize = 256;
/// At most this many readers without an owner level per consumer group and
/// partition, as in Event Hubs.
const MAX_READERS_WITHOUT_EPOCH: usize = 5;

/// A reply on a request/reply node: an amqp-value body.
type Reply = Message<AmqpValue<Value>>;

/// Why the broker detaches a reader.
#[derive(Debug, Clone)]
pub(crate) struct Kick {
    pub condition: ErrorCondition,
    pub description: String,
}

/// Where request/reply nodes send replies, per connection.
#[derive(Debug, Clone, Default)]
struct ReplyLinks {
    links: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Reply>>>>,
}

impl ReplyLinks {
    fn register(&self, address: String, tx: mpsc::UnboundedSender<Reply>) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address, tx);
    }

    /// Sends a reply, waiting briefly for the link if the client has not
    /// attached it yet.
    async fn send(&self, address: &str, mut reply: Reply) -> bool {
        for _ in 0..50 {
            let tx = self
                .links
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(address)
                .cloned();
            if let Some(tx) = tx {
                match tx.send(reply) {
                    Ok(()) => return true,
                    Err(mpsc::error::SendError(back)) => reply = back,
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// What a connection's links share.
#[derive(Debug, Clone)]
struct ConnectionContext {
    shared: Arc<Shared>,
    id: u64,
    tokens: ConnectionTokens,
    replies: ReplyLinks,
}

/// SASL: MSSBCBS and ANONYMOUS offered, both accepted (auth is CBS's job).
#[derive(Debug, Clone)]
struct CbsSasl;

impl SaslAcceptor for CbsSasl {
    fn mechanisms(&self) -> Array<Symbol> {
        Array::from(vec![Symbol::from("MSSBCBS"), Symbol::from("ANONYMOUS")])
    }

    fn on_init(&mut self, _init: SaslInit) -> SaslServerFrame {
        SaslServerFrame::Outcome(SaslOutcome {
            code: SaslCode::Ok,
            additional_data: None,
        })
    }

    fn on_response(&mut self, _response: SaslResponse) -> SaslServerFrame {
        SaslServerFrame::Outcome(SaslOutcome {
            code: SaslCode::Ok,
            additional_data: None,
        })
    }
}

pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let id = shared.next_id();
                tracing::debug!(connection = id, %peer, "connection");
                tokio::spawn(serve_connection(shared.clone(), stream, id));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream, id: u64) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    if shared.faults.hang_open.load(Ordering::Relaxed) {
        hold_unanswered(&shared, stream).await;
        return;
    }
    // A clone of the socket lets a fault cut it at the TCP level.
    let stream = match stream.into_std().and_then(|s| {
        let killer = s.try_clone()?;
        Ok((s, killer))
    }) {
        Ok((std_stream, killer)) => {
            shared
                .connections
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, killer);
            match TcpStream::from_std(std_stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register the connection");
                    return;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot register the connection");
            return;
        }
    };
    let acceptor = ConnectionAcceptor::builder()
        .container_id(format!("ledger-eh-broker-{id}"))
        .max_frame_size(wire::MAX_FRAME_SIZE)
        .sasl_acceptor(CbsSasl)
        .build();
    let stream = wire::FullPerformatives::new(wire::MootDetachFilter::new(
        stream,
        shared.config.detach_grace,
    ));
    match acceptor.accept(stream).await {
        Ok(mut connection) => {
            let context = ConnectionContext {
                shared: shared.clone(),
                id,
                tokens: ConnectionTokens::default(),
                replies: ReplyLinks::default(),
            };
            serve_sessions(&context, &mut connection).await;
            let _ = connection.close().await;
        }
        Err(e) => tracing::info!(connection = id, error = %e, "connection refused during open"),
    }
    shared
        .connections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
}

/// The hung-Open fault: read and discard until the client goes or the fault
/// is cleared.
async fn hold_unanswered(shared: &Shared, mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut sink = vec![0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut sink) => if matches!(read, Ok(0) | Err(_)) { return },
            () = shared.faults.cleared.notified() => return,
        }
    }
}

async fn serve_sessions(context: &ConnectionContext, connection: &mut ListenerConnectionHandle) {
    let acceptor = SessionAcceptor::builder()
        .incoming_window(65_536)
        .outgoing_window(65_536)
        .build();
    while let Ok(session) = acceptor.accept(connection).await {
        tokio::spawn(serve_links(context.clone(), session));
    }
}

async fn serve_links(context: ConnectionContext, mut session: ListenerSessionHandle) {
    while let Some(attach) = session.next_incoming_attach().await {
        serve_attach(&context, &mut session, attach).await;
    }
    let _ = session.end().await;
}

fn amqp_error(
    condition: impl Into<ErrorCondition>,
    description: impl Into<String>,
) -> definitions::Error {
    definitions::Error::new(condition.into(), Some(description.into()), None)
}

async fn serve_attach(
    context: &ConnectionContext,
    session: &mut ListenerSessionHandle,
    attach: Attach,
) {
    let max_message_size = context.shared.config.max_message_size;
    let source_address = attach
        .source
        .as_ref()
        .and_then(|s| s.address.clone())
        .unwrap_or_default();
    let target_address = match attach.target.as_deref() {
        Some(fe2o3_amqp::types::messaging::TargetArchetype::Target(t)) => {
            t.address.clone().unwrap_or_default()
        }
        #[allow(unreachable_patterns)]
        _ => String::new(),
    };
    match attach.role {
        // The client sends: a request node or a producer.
        Role::Sender => {
            let node = address::parse_node(&target_address);
            // Settled at once, whatever the client asked for: the service
            // does so, and the Python client waits for a settled outcome.
            let acceptor = LinkAcceptor::builder()
                .max_message_size(max_message_size)
                .supported_receiver_settle_modes(SupportedReceiverSettleModes::First)
                .fallback_receiver_settle_mode(ReceiverSettleMode::First)
                .build();
            let Some(LinkEndpoint::Receiver(receiver)) =
                accept_link(context, &acceptor, attach, session).await
            else {
                return;
            };
            let context = context.clone();
            match node {
                Node::Cbs => {
                    let delay: fn(&Faults) -> &AtomicU64 = |f| &f.cbs_delay_ms;
                    tokio::spawn(serve_requests(context, receiver, "$cbs", delay, cbs_answer));
                }
                Node::Management => {
                    let delay: fn(&Faults) -> &AtomicU64 = |f| &f.management_delay_ms;
                    tokio::spawn(serve_requests(
                        context,
                        receiver,
                        "$management",
                        delay,
                        management_read,
                    ));
                }
                Node::Producer { hub, partition } => {
                    tokio::spawn(serve_producer(
                        context,
                        receiver,
                        target_address,
                        hub,
                        partition,
                    ));
                }
                Node::Consumer { .. } | Node::Other(_) => {
                    let _ = receiver
                        .close_with_error(amqp_error(
                            AmqpError::NotFound,
                            format!("cannot send to {target_address:?}"),
                        ))
                        .await;
                }
            }
        }
        // The client receives: a reply link or a partition reader.
        Role::Receiver => {
            let node = address::parse_node(&source_address);
            // The epoch is echoed on our attach, as the service does.
            let epoch_value = link_property(&attach, "com.microsoft:epoch");
            let mut properties = OrderedMap::new();
            if let Some(epoch) = epoch_value.clone() {
                properties.insert(Symbol::from("com.microsoft:epoch"), epoch);
            }
            let epoch = match epoch_value {
                Some(Value::Long(e)) => Some(e),
                Some(Value::Int(e)) => Some(i64::from(e)),
                Some(Value::Uint(e)) => Some(i64::from(e)),
                _ => None,
            };
            let start = start_filter(&attach);
            let acceptor = LinkAcceptor::builder()
                .max_message_size(max_message_size)
                .supported_sender_settle_modes(SupportedSenderSettleModes::Settled)
                .fallback_sender_settle_mode(SenderSettleMode::Settled)
                .properties(properties)
                .build();
            let Some(LinkEndpoint::Sender(sender)) =
                accept_link(context, &acceptor, attach, session).await
            else {
                return;
            };
            match node {
                Node::Cbs | Node::Management => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let name = if node == Node::Cbs {
                        "$cbs"
                    } else {
                        "$management"
                    };
                    context.replies.register(name.to_owned(), tx.clone());
                    if !target_address.is_empty() {
                        context.replies.register(target_address, tx);
                    }
                    tokio::spawn(serve_replies(sender, rx));
                }
                Node::Consumer {
                    hub,
                    consumer_group,
                    partition,
                } => {
                    let reader = ReaderLink {
                        context: context.clone(),
                        address: source_address,
                        hub,
                        consumer_group,
                        partition,
                        epoch,
                    };
                    tokio::spawn(reader.serve(sender, start));
                }
                Node::Producer { .. } | Node::Other(_) => {
                    let _ = sender
                        .close_with_error(amqp_error(
                            AmqpError::NotFound,
                            format!("cannot receive from {source_address:?}"),
                        ))
                        .await;
                }
            }
        }
    }
}

/// Accepts an attach; a refused one is logged and gives `None`.
async fn accept_link<FS, FT>(
    context: &ConnectionContext,
    acceptor: &LinkAcceptor<FS, FT>,
    attach: Attach,
    session: &mut ListenerSessionHandle,
) -> Option<LinkEndpoint>
where
    FS: Fn(fe2o3_amqp::types::messaging::Source) -> Option<fe2o3_amqp::types::messaging::Source>,
    FT: Fn(fe2o3_amqp::types::messaging::Target) -> Option<fe2o3_amqp::types::messaging::Target>,
{
    match acceptor.accept_incoming_attach(attach, session).await {
        Ok(link) => Some(link),
        Err(e) => {
            tracing::info!(connection = context.id, error = %e, "attach refused");
            None
        }
    }
}

fn link_property(attach: &Attach, key: &str) -> Option<Value> {
    attach.properties.as_ref()?.get(&Symbol::from(key)).cloned()
}

/// The start filter, by its symbolic name or numeric descriptor.
fn start_filter(attach: &Attach) -> Result<StartPosition, String> {
    let Some(filters) = attach.source.as_ref().and_then(|s| s.filter.as_ref()) else {
        return Ok(StartPosition::Latest);
    };
    for (_, value) in filters.iter() {
        let text = match value {
            Value::Described(described) => match &described.value {
                Value::String(s) => s.clone(),
                _ => continue,
            },
            Value::String(s) => s.clone(),
            _ => continue,
        };
        return address::parse_selector(&text).map_err(|e| e.to_string());
    }
    Ok(StartPosition::Latest)
}

async fn serve_replies(mut sender: Sender, mut replies: mpsc::UnboundedReceiver<Reply>) {
    loop {
        tokio::select! {
            reply = replies.recv() => {
                let Some(reply) = reply else { break };
                let sendable = Sendable::builder().message(reply).settled(PRESETTLED).build();
                if sender.send(sendable).await.is_err() {
                    return;
                }
            }
            // fe2o3 has answered the client's detach already; a close()
            // now would re-attach the link first (an Attach the client no
            // longer knows, which ends its session).
            _ = sender.on_detach() => return,
        }
    }
    let _ = sender.close().await;
}

fn application_property<'a>(message: &'a Message<Value>, key: &str) -> Option<&'a SimpleValue> {
    message.application_properties.as_ref()?.0.get(key)
}

fn property_text(message: &Message<Value>, key: &str) -> Option<String> {
    match application_property(message, key)? {
        SimpleValue::String(s) => Some(s.clone()),
        SimpleValue::Symbol(s) => Some(s.0.clone()),
        _ => None,
    }
}

/// A reply to a request: correlated to its message id, with a status.
fn reply_to_request(
    request: &Message<Value>,
    status: i32,
    description: &str,
    body: Value,
) -> (String, Reply) {
    let request_properties = request.properties.as_ref();
    let correlation_id = request_properties.and_then(|p| p.message_id.clone());
    let reply_to = request_properties.and_then(|p| p.reply_to.clone());
    let mut application = OrderedMap::new();
    application.insert("status-code".to_owned(), SimpleValue::Int(status));
    application.insert(
        "status-description".to_owned(),
        SimpleValue::String(description.to_owned()),
    );
    let message = Message {
        header: None,
        delivery_annotations: None,
        message_annotations: None,
        properties: Some(Properties {
            correlation_id,
            to: reply_to.clone(),
            ..Default::default()
        }),
        application_properties: Some(ApplicationProperties(application)),
        body: AmqpValue(body),
        footer: None,
    };
    (reply_to.unwrap_or_default(), message)
}

async fn send_reply(context: &ConnectionContext, node: &str, (reply_to, reply): (String, Reply)) {
    let address = if reply_to.is_empty() {
        node
    } else {
        reply_to.as_str()
    };
    if !context.replies.send(address, reply).await {
        tracing::info!(connection = context.id, node, "no reply link for a request");
    }
}

/// Serves a request/reply node (`$cbs`, `$management`): each request is
/// settled, answered after the node's fault delay, and the answer sent on
/// the client's reply link.
async fn serve_requests(
    context: ConnectionContext,
    mut receiver: Receiver,
    node: &'static str,
    delay_ms: fn(&Faults) -> &AtomicU64,
    answer: fn(&ConnectionContext, &Message<Value>) -> (String, Reply),
) {
    while let Ok(delivery) = receiver.recv::<Value>().await {
        settle(&context, &receiver, &delivery, None).await;
        let request = delivery.into_message();
        let delay = delay_ms(&context.shared.faults).load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let reply = answer(&context, &request);
        send_reply(&context, node, reply).await;
    }
    // The client detached: fe2o3 answered it; closing would re-attach.
}

/// Accepts a delivery from a client (or rejects it with `error`), after
/// `disposition_delay`: the fe2o3 0.16 client writes a transfer before it
/// registers the delivery's outcome, and loses an answer faster than that.
async fn settle<T>(
    context: &ConnectionContext,
    receiver: &Receiver,
    delivery: &fe2o3_amqp::link::delivery::Delivery<T>,
    error: Option<definitions::Error>,
) {
    let delay = context.shared.config.disposition_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let _ = match error {
        None => receiver.accept(delivery).await,
        Some(error) => receiver.reject(delivery, error).await,
    };
}

/// The answer to a put-token, unless the refusal fault is set.
fn cbs_answer(context: &ConnectionContext, request: &Message<Value>) -> (String, Reply) {
    if context.shared.faults.cbs_refuse.load(Ordering::Relaxed) {
        return reply_to_request(request, 401, "refused by fault injection", Value::Null);
    }
    put_token(context, request)
}

/// A request/reply node serves one operation; others get a 400 (this reply).
fn refused_operation(request: &Message<Value>, want: &str) -> Option<(String, Reply)> {
    let operation = property_text(request, "operation").unwrap_or_default();
    (operation != want).then(|| {
        reply_to_request(
            request,
            400,
            &format!("unsupported operation {operation:?} (this node serves {want:?})"),
            Value::Null,
        )
    })
}

fn put_token(context: &ConnectionContext, request: &Message<Value>) -> (String, Reply) {
    if let Some(refusal) = refused_operation(request, "put-token") {
        return refusal;
    }
    let token_type = property_text(request, "type").unwrap_or_default();
    let name = property_text(request, "name").unwrap_or_default();
    let Value::String(token) = &request.body else {
        return reply_to_request(request, 400, "the token must be a string body", Value::Null);
    };
    let path = address::entity_path(&name);
    let hub_name = path.split('/').next().unwrap_or_default();
    if !hub_name.is_empty() && context.shared.hub(hub_name).is_none() {
        return reply_to_request(
            request,
            404,
            &format!("no event hub named {hub_name:?}"),
            Value::Null,
        );
    }
    match context
        .shared
        .verifier
        .verify(&token_type, token, now_ms() / 1000)
    {
        Ok(grant) => {
            tracing::debug!(connection = context.id, scope = %grant.scope, expires_at = grant.expires_at, "token accepted");
            context.tokens.put(grant);
            context
                .shared
                .stats
                .tokens_accepted
                .fetch_add(1, Ordering::Relaxed);
            reply_to_request(request, 202, "Accepted", Value::Null)
        }
        Err(e) => {
            tracing::info!(connection = context.id, error = %e, "token refused");
            let status = if matches!(
                e,
                crate::auth::TokenError::Malformed(_) | crate::auth::TokenError::UnknownType(_)
            ) {
                400
            } else {
                401
            };
            reply_to_request(request, status, &e.to_string(), Value::Null)
        }
    }
}

fn timestamp(ms: i64) -> Value {
    Value::Timestamp(Timestamp::from_milliseconds(ms))
}

fn management_read(context: &ConnectionContext, request: &Message<Value>) -> (String, Reply) {
    if let Some(refusal) = refused_operation(request, "READ") {
        return refusal;
    }
    let entity_type = property_text(request, "type").unwrap_or_default();
    let name = property_text(request, "name").unwrap_or_default();
    let Some(hub) = context.shared.hub(&name) else {
        return reply_to_request(
            request,
            404,
            &format!("no event hub named {name:?}"),
            Value::Null,
        );
    };
    if context
        .tokens
        .valid_until(&hub.name.to_ascii_lowercase(), now_ms() / 1000)
        .is_none()
    {
        return reply_to_request(
            request,
            401,
            "put a token for the event hub first",
            Value::Null,
        );
    }
    let mut map: OrderedMap<Value, Value> = OrderedMap::new();
    let mut put = |k: &str, v: Value| {
        map.insert(Value::String(k.to_owned()), v);
    };
    match entity_type.as_str() {
        "com.microsoft:eventhub" => {
            put("name", Value::String(hub.name.clone()));
            put("type", Value::String(entity_type.clone()));
            put("created_at", timestamp(hub.created_at_ms));
            put(
                "partition_count",
                Value::Int(i32::try_from(hub.partitions.len()).unwrap_or(i32::MAX)),
            );
            let ids = (0..hub.partitions.len())
                .map(|i| Value::String(i.to_string()))
                .collect::<Vec<_>>();
            put("partition_ids", Value::Array(Array::from(ids)));
        }
        "com.microsoft:partition" => {
            let id = property_text(request, "partition").unwrap_or_default();
            let Some(partition) = hub.partition(&id) else {
                return reply_to_request(
                    request,
                    404,
                    &format!("no partition {id:?} in {}", hub.name),
                    Value::Null,
                );
            };
            let info = partition.info();
            put("name", Value::String(hub.name.clone()));
            put("type", Value::String(entity_type.clone()));
            put("partition", Value::String(id));
            put(
                "begin_sequence_number",
                Value::Long(info.begin_sequence_number),
            );
            put(
                "last_enqueued_sequence_number",
                Value::Long(info.last_sequence_number),
            );
            put(
                "last_enqueued_offset",
                Value::String(info.last_offset.to_string()),
            );
            put("last_enqueued_time_utc", timestamp(info.last_enqueued_ms));
            put("is_partition_empty", Value::Bool(info.is_empty));
            put("last_enqueued_sequence_number_epoch", Value::Long(0));
        }
        other => {
            return reply_to_request(
                request,
                400,
                &format!("unknown entity type {other:?}"),
                Value::Null,
            );
        }
    }
    reply_to_request(request, 200, "OK", Value::Map(map))
}

/// Closes the link when the token covering it expires without a refresh.
async fn token_expired(context: &ConnectionContext, path: &str) {
    loop {
        let now = now_ms() / 1000;
        let Some(until) = context.tokens.valid_until(path, now) else {
            return;
        };
        let wait = u64::try_from(until - now).unwrap_or(0).max(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

fn unauthorized(path: &str) -> definitions::Error {
    amqp_error(
        AmqpError::UnauthorizedAccess,
        format!(
            "no valid token covers {path:?}: put one on $cbs first (or refresh it before it expires)"
        ),
    )
}

fn partition_key_of(annotations: Option<&MessageAnnotations>) -> Option<String> {
    match annotations?
        .0
        .get(&OwnedKey::Symbol(Symbol::from("x-opt-partition-key")))?
    {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A stable hash for partition keys (FNV-1a, 64 bits).
pub(crate) fn partition_for_key(key: &str, partitions: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    usize::try_from(hash % partitions.max(1) as u64).unwrap_or(0)
}

async fn serve_producer(
    context: ConnectionContext,
    mut receiver: Receiver,
    address: String,
    hub_name: String,
    partition: Option<String>,
) {
    let path = address::entity_path(&address);
    let Some(hub) = context.shared.hub(&hub_name) else {
        let _ = receiver
            .close_with_error(amqp_error(
                AmqpError::NotFound,
                format!("no event hub named {hub_name:?}"),
            ))
            .await;
        return;
    };
    if let Some(id) = &partition
        && hub.partition(id).is_none()
    {
        let _ = receiver
            .close_with_error(amqp_error(
                AmqpError::NotFound,
                format!("no partition {id:?} in {}", hub.name),
            ))
            .await;
        return;
    }
    if context.tokens.valid_until(&path, now_ms() / 1000).is_none() {
        let _ = receiver.close_with_error(unauthorized(&path)).await;
        return;
    }
    // Python assumes 10,000 credit whatever the attach granted.
    receiver.set_credit_mode(fe2o3_amqp::link::receiver::CreditMode::Auto(10_000));
    if receiver.set_credit(10_000).await.is_err() {
        return;
    }
    let max = context.shared.config.max_message_size;
    let mut round_robin = 0usize;
    loop {
        let delivery = tokio::select! {
            d = receiver.recv::<Body<Value>>() => d,
            () = token_expired(&context, &path) => {
                let _ = receiver.close_with_error(unauthorized(&path)).await;
                return;
            }
        };
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => {
                // The client detached (fe2o3 answered it; closing would
                // re-attach) or the connection went.
                tracing::debug!(connection = context.id, error = %e, "producer link ended");
                return;
            }
        };
        let format = delivery.message_format().unwrap_or(0);
        let message = delivery.message();
        let key = partition_key_of(message.message_annotations.as_ref());
        let events = match unpack(message, format) {
            Ok(events) => events,
            Err(reason) => {
                let error = amqp_error(AmqpError::DecodeError, reason);
                settle(&context, &receiver, &delivery, Some(error)).await;
                continue;
            }
        };
        let size: usize = events.iter().map(Bytes::len).sum();
        if size as u64 > max {
            let error = amqp_error(
                LinkError::MessageSizeExceeded,
                format!("the message is {size} bytes; the limit is {max}"),
            );
            settle(&context, &receiver, &delivery, Some(error)).await;
            continue;
        }
        let index = match (&partition, &key) {
            (Some(id), _) => id.parse::<usize>().unwrap_or(0),
            (None, Some(key)) => partition_for_key(key, hub.partitions.len()),
            (None, None) => {
                round_robin = (round_robin + 1) % hub.partitions.len();
                round_robin
            }
        };
        let count = events.len() as u64;
        let stored = match hub.partitions.get(index) {
            Some(p) => p.append(events, key.as_deref()),
            None => Err(BrokerError::Config(format!(
                "no partition {index} in {}",
                hub.name
            ))),
        };
        let error = match stored {
            Ok(_) => {
                let stats = &context.shared.stats;
                stats.events_in.fetch_add(count, Ordering::Relaxed);
                stats.bytes_in.fetch_add(size as u64, Ordering::Relaxed);
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot store events");
                Some(amqp_error(
                    AmqpError::InternalError,
                    "cannot store the events",
                ))
            }
        };
        settle(&context, &receiver, &delivery, error).await;
    }
}

/// The encoded events in a delivery: a batch's Data sections, or the whole
/// message.
fn unpack(message: &Message<Body<Value>>, format: u32) -> Result<Vec<Bytes>, String> {
    if format == BATCH_FORMAT {
        let Body::Data(sections) = &message.body else {
            return Err("a batch (format 0x80013700) must hold Data sections".into());
        };
        let mut events = Vec::with_capacity(sections.len());
        for Data(bytes) in sections.iter() {
            // Each section must itself be a message.
            if serde_amqp::from_slice::<Deserializable<Message<Body<Value>>>>(bytes).is_err() {
                return Err("a batch section is not an encoded AMQP message".into());
            }
            events.push(Bytes::copy_from_slice(bytes));
        }
        return Ok(events);
    }
    let mut single = message.clone();
    single.delivery_annotations = None;
    serde_amqp::to_vec(&Serializable(single))
        .map(|bytes| vec![Bytes::from(bytes)])
        .map_err(|e| format!("cannot encode the message: {e}"))
}

/// A partition reader.
struct ReaderLink {
    context: ConnectionContext,
    address: String,
    hub: String,
    consumer_group: String,
    partition: String,
    epoch: Option<i64>,
}

impl ReaderLink {
    fn key(&self) -> String {
        format!("{}/{}/{}", self.hub, self.consumer_group, self.partition).to_ascii_lowercase()
    }

    /// Registers the reader by its epoch, detaching the readers it displaces.
    fn claim(&self, id: u64) -> Result<watch::Receiver<Option<Kick>>, Kick> {
        let mut readers = self
            .context
            .shared
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let slots = readers.entry(self.key()).or_default();
        slots.retain(|s| !s.kick.is_closed());
        let held = slots.iter().filter_map(|s| s.epoch).max();
        match (self.epoch, held) {
            (Some(mine), Some(theirs)) if mine < theirs => {
                return Err(Kick {
                    condition: LinkError::Stolen.into(),
                    description: format!(
                        "a receiver with the higher epoch '{theirs}' holds the partition"
                    ),
                });
            }
            (Some(mine), _) => {
                for slot in slots.drain(..) {
                    slot.kick.send_replace(Some(Kick {
                        condition: LinkError::Stolen.into(),
                        description: format!(
                            "New receiver with higher epoch of '{mine}' is created"
                        ),
                    }));
                }
            }
            (None, Some(theirs)) => {
                return Err(Kick {
                    condition: LinkError::Stolen.into(),
                    description: format!("a receiver with epoch '{theirs}' holds the partition"),
                });
            }
            (None, None) if slots.len() >= MAX_READERS_WITHOUT_EPOCH => {
                return Err(Kick {
                    condition: AmqpError::ResourceLimitExceeded.into(),
                    description: format!(
                        "at most {MAX_READERS_WITHOUT_EPOCH} readers per partition and consumer group"
                    ),
                });
            }
            (None, None) => {}
        }
        let (kick, kicked) = watch::channel(None);
        slots.push(ReaderSlot {
            id,
            epoch: self.epoch,
            kick,
        });
        Ok(kicked)
    }

    fn release(&self, id: u64) {
        let mut readers = self
            .context
            .shared
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(slots) = readers.get_mut(&self.key()) {
            slots.retain(|s| s.id != id);
        }
    }

    async fn serve(self, sender: Sender, start: Result<StartPosition, String>) {
        let id = self.context.shared.next_id();
        if let Err(error) = self.checked(&start) {
            let _ = sender.close_with_error(error).await;
            return;
        }
        let mut kicked = match self.claim(id) {
            Ok(k) => k,
            Err(kick) => {
                let _ = sender
                    .close_with_error(amqp_error(kick.condition, kick.description))
                    .await;
                return;
            }
        };
        let outcome = self
            .deliver(sender, start.unwrap_or(StartPosition::Latest), &mut kicked)
            .await;
        self.release(id);
        if let Some((sender, error)) = outcome {
            let _ = sender.close_with_error(error).await;
        }
    }

    /// Why the attach cannot be served, if it cannot.
    fn checked(&self, start: &Result<StartPosition, String>) -> Result<(), definitions::Error> {
        let hub = self.hub().ok_or_else(|| {
            amqp_error(
                AmqpError::NotFound,
                format!("no event hub named {:?}", self.hub),
            )
        })?;
        if !hub.has_consumer_group(&self.consumer_group) {
            return Err(amqp_error(
                AmqpError::NotFound,
                format!(
                    "no consumer group {:?} in {}",
                    self.consumer_group, hub.name
                ),
            ));
        }
        if hub.partition(&self.partition).is_none() {
            return Err(amqp_error(
                AmqpError::NotFound,
                format!("no partition {:?} in {}", self.partition, hub.name),
            ));
        }
        if let Err(reason) = start {
            return Err(amqp_error(AmqpError::InvalidField, reason.clone()));
        }
        let path = address::entity_path(&self.address);
        if self
            .context
            .tokens
            .valid_until(&path, now_ms() / 1000)
            .is_none()
        {
            return Err(unauthorized(&path));
        }
        Ok(())
    }

    fn hub(&self) -> Option<Arc<Hub>> {
        self.context.shared.hub(&self.hub)
    }

    /// Sends events until the client detaches (`None`) or the broker must
    /// detach it (the link and the error).
    async fn deliver(
        &self,
        mut sender: Sender,
        start: StartPosition,
        kicked: &mut watch::Receiver<Option<Kick>>,
    ) -> Option<(Sender, definitions::Error)> {
        let path = address::entity_path(&self.address);
        let hub = self.hub()?;
        let partition = hub.partition(&self.partition)?.clone();
        let mut tail = partition.subscribe();
        let mut next = partition.resolve(&start);
        loop {
            let events = partition.read_from(next, READ_CHUNK);
            if events.is_empty() {
                tokio::select! {
                    changed = tail.changed() => if changed.is_err() { return None },
                    _ = kicked.changed() => return kick_of(kicked).map(|e| (sender, e)),
                    () = token_expired(&self.context, &path) => return Some((sender, unauthorized(&path))),
                    _ = sender.on_detach() => return None,
                }
                continue;
            }
            for event in events {
                next = event.sequence_number + 1;
                let Some(message) = annotated(&event) else {
                    continue;
                };
                let sendable = Sendable::builder()
                    .message(message)
                    .settled(PRESETTLED)
                    .build();
                tokio::select! {
                    sent = sender.send(sendable) => if sent.is_err() { return None },
                    _ = kicked.changed() => return kick_of(kicked).map(|e| (sender, e)),
                    () = token_expired(&self.context, &path) => return Some((sender, unauthorized(&path))),
                }
                self.context
                    .shared
                    .stats
                    .events_out
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn kick_of(kicked: &watch::Receiver<Option<Kick>>) -> Option<definitions::Error> {
    kicked
        .borrow()
        .clone()
        .map(|kick| amqp_error(kick.condition, kick.description))
}

/// The stored message with the annotations readers need.
fn annotated(event: &StoredEvent) -> Option<Message<Body<Value>>> {
    let Deserializable(mut message) =
        serde_amqp::from_slice::<Deserializable<Message<Body<Value>>>>(&event.message).ok()?;
    let annotations = message
        .message_annotations
        .get_or_insert_with(|| MessageAnnotations(OrderedMap::new()));
    let mut set = |key: &str, value: Value| {
        annotations
            .0
            .insert(OwnedKey::Symbol(Symbol::from(key)), value);
    };
    set("x-opt-sequence-number", Value::Long(event.sequence_number));
    set("x-opt-offset", Value::String(event.offset.to_string()));
    set("x-opt-enqueued-time", timestamp(event.enqueued_ms));
    if let Some(key) = &event.partition_key {
        set("x-opt-partition-key", Value::String(key.clone()));
    }
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_hash_stably_and_spread() {
        assert_eq!(partition_for_key("abc", 4), partition_for_key("abc", 4));
        let mut seen = [0usize; 4];
        for i in 0..400 {
            seen[partition_for_key(&format!("request-{i}"), 4)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }

    #[test]
    fn a_plain_message_round_trips_through_storage_with_annotations() {
        use fe2o3_amqp::types::messaging::Batch;
        let message: Message<Body<Value>> = Message {
            header: None,
            delivery_annotations: None,
            message_annotations: None,
            properties: None,
            application_properties: None,
            body: Body::Data(Batch::new(vec![Data::from(b"hello".to_vec())])),
            footer: None,
        };
        let stored = unpack(&message, 0).unwrap();
        let event = StoredEvent {
            sequence_number: 7,
            offset: 120,
            enqueued_ms: 1_700_000_000_000,
            partition_key: Some("k".into()),
            message: stored[0].clone(),
        };
        let out = annotated(&event).unwrap();
        let annotations = out.message_annotations.unwrap();
        let get = |k: &str| {
            annotations
                .0
                .get(&OwnedKey::Symbol(Symbol::from(k)))
                .cloned()
        };
        assert_eq!(get("x-opt-sequence-number"), Some(Value::Long(7)));
        assert_eq!(get("x-opt-offset"), Some(Value::String("120".into())));
        assert_eq!(get("x-opt-partition-key"), Some(Value::String("k".into())));
        assert!(matches!(out.body, Body::Data(_)));
    }
}
