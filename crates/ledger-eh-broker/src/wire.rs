//! The broker's side of the byte stream, adjusted for two clients' quirks.
//!
//! Reads: [`MootDetachFilter`] takes out the link detaches that their
//! session's End makes moot. The fe2o3 0.16 client (under the Rust SDK)
//! ends a short-lived session — one per CBS authorization — by dropping its
//! links and the session at once: it writes `detach`, `detach`, `end` back
//! to back. A peer that answers both detaches before its `end` makes that
//! client fail: the first answer is for a link it has dropped (an
//! unattached-handle error that ends the session early), the second then
//! stops the session before the peer's `end` arrives, and that `end` finds
//! no session and closes the whole connection. fe2o3's acceptor answers a
//! detach as soon as the link reads it, so the filter holds a CBS session's
//! `detach` back for a grace period; if the same channel's `end` comes within it, the
//! held detaches are dropped (ending a session detaches its links anyway).
//! Otherwise everything held goes on in order.
//!
//! Writes: [`FullPerformatives`] writes every performative with all its
//! fields. fe2o3 leaves trailing empty fields out (as AMQP allows), but the
//! pure-Python AMQP stack of `azure-eventhub` reads fields by position (a
//! transfer's payload is its twelfth item), so a short list breaks it. The
//! missing fields are written as nulls, which mean the same to every peer.
//! So that a filled-up frame never outgrows the client's `max-frame-size`,
//! the reader shows fe2o3 a client limit smaller by a little
//! ([`PADDING_ROOM`]).

use std::collections::{HashSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The largest frame the broker accepts (announced in its Open).
pub(crate) const MAX_FRAME_SIZE: u32 = 256 * 1024;
const PROTOCOL_HEADER_LEN: usize = 8;
const FRAME_HEADER_LEN: usize = 8;
const AMQP_FRAME: u8 = 0;
const SASL_FRAME: u8 = 1;
const OPEN: u64 = 0x10;
const ATTACH: u64 = 0x12;
const DETACH: u64 = 0x16;
const END: u64 = 0x17;

/// What the filter needs to know of one unit of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// An attach of a `$cbs` link: its session is a CBS session.
    CbsAttach {
        channel: u16,
    },
    Detach {
        channel: u16,
    },
    End {
        channel: u16,
    },
    Other,
}

#[derive(Debug)]
struct Held {
    unit: Unit,
    bytes: BytesMut,
}

/// A stream whose reads leave out detaches that an `end` follows closely;
/// writes pass through.
#[derive(Debug)]
pub(crate) struct MootDetachFilter<S> {
    inner: S,
    grace: Duration,
    /// Read from `inner`, not yet split into units.
    raw: BytesMut,
    /// Units released to the reader, in order.
    ready: BytesMut,
    /// Units held behind a detach, in order.
    held: VecDeque<Held>,
    hold_timer: Option<Pin<Box<Sleep>>>,
    /// Channels whose session has a `$cbs` link: the short-lived sessions
    /// whose detaches are held. Other links may be detached and attached
    /// again under the same name at once (the SDK does), which a held
    /// detach would refuse.
    cbs_sessions: HashSet<u16>,
    eof: bool,
}

impl<S> MootDetachFilter<S> {
    pub(crate) fn new(inner: S, grace: Duration) -> Self {
        MootDetachFilter {
            inner,
            grace,
            raw: BytesMut::with_capacity(16 * 1024),
            ready: BytesMut::new(),
            held: VecDeque::new(),
            hold_timer: None,
            cbs_sessions: HashSet::new(),
            eof: false,
        }
    }

    /// Moves every complete unit out of `raw`, into `ready` or `held`.
    fn split_units(&mut self) {
        while let Some((len, unit)) = next_unit(&self.raw) {
            let mut bytes = self.raw.split_to(len);
            if let Some(open) = open_with_padding_room(&bytes) {
                bytes = BytesMut::from(&open[..]);
            }
            let holding = !self.held.is_empty();
            match unit {
                Unit::CbsAttach { channel } => {
                    self.cbs_sessions.insert(channel);
                    self.pass(holding, unit, bytes);
                }
                Unit::Detach { channel }
                    if self.grace.is_zero() || !self.cbs_sessions.contains(&channel) =>
                {
                    self.pass(holding, unit, bytes);
                }
                Unit::Detach { .. } => {
                    if !holding {
                        self.hold_timer = Some(Box::pin(tokio::time::sleep(self.grace)));
                    }
                    self.held.push_back(Held { unit, bytes });
                }
                Unit::End { channel } if holding => {
                    self.cbs_sessions.remove(&channel);
                    self.held.retain(|h| h.unit != Unit::Detach { channel });
                    self.held.push_back(Held { unit, bytes });
                    if !self
                        .held
                        .iter()
                        .any(|h| matches!(h.unit, Unit::Detach { .. }))
                    {
                        self.release_held();
                    }
                }
                Unit::End { channel } => {
                    self.cbs_sessions.remove(&channel);
                    self.pass(holding, unit, bytes);
                }
                Unit::Other => self.pass(holding, unit, bytes),
            }
        }
    }

    /// Hands a unit on, behind whatever is held.
    fn pass(&mut self, holding: bool, unit: Unit, bytes: BytesMut) {
        if holding {
            self.held.push_back(Held { unit, bytes });
        } else {
            self.ready.extend_from_slice(&bytes);
        }
    }

    fn release_held(&mut self) {
        for held in self.held.drain(..) {
            self.ready.extend_from_slice(&held.bytes);
        }
        self.hold_timer = None;
    }
}

/// The length of the unit at the start of `buf`, once it is whole: an
/// 8-byte protocol header (`AMQP` + id + version) or a frame.
fn unit_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 4 {
        return None;
    }
    if &buf[..4] == b"AMQP" {
        return (buf.len() >= PROTOCOL_HEADER_LEN).then_some(PROTOCOL_HEADER_LEN);
    }
    let size = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(FRAME_HEADER_LEN..=MAX_FRAME_SIZE as usize).contains(&size) {
        // Not a frame the broker allows: passed on as it is, for fe2o3 to reject.
        return Some(buf.len());
    }
    (buf.len() >= size).then_some(size)
}

/// A whole frame's type, channel and body (after its extended header).
fn frame_parts(frame: &[u8]) -> Option<(u8, u16, &[u8])> {
    if frame.len() < FRAME_HEADER_LEN || &frame[..4] == b"AMQP" {
        return None;
    }
    let doff = (frame[4] as usize * 4).max(FRAME_HEADER_LEN);
    let channel = u16::from_be_bytes([frame[6], frame[7]]);
    Some((frame[5], channel, frame.get(doff..)?))
}

/// The length and kind of the unit at the start of `buf`, once it is whole.
fn next_unit(buf: &[u8]) -> Option<(usize, Unit)> {
    let len = unit_len(buf)?;
    let unit = match frame_parts(&buf[..len]) {
        Some((AMQP_FRAME, channel, body)) => match performative_code(body) {
            Some(ATTACH) if attaches_cbs(body) => Unit::CbsAttach { channel },
            Some(DETACH) => Unit::Detach { channel },
            Some(END) => Unit::End { channel },
            _ => Unit::Other,
        },
        _ => Unit::Other,
    };
    Some((len, unit))
}

/// The descriptor code of an AMQP performative (`0x00` + ulong code).
fn performative_code(body: &[u8]) -> Option<u64> {
    match body {
        [0x00, 0x53, code, ..] => Some(u64::from(*code)),
        [0x00, 0x80, rest @ ..] if rest.len() >= 8 => {
            let mut code = [0u8; 8];
            code.copy_from_slice(&rest[..8]);
            Some(u64::from_be_bytes(code))
        }
        [0x00, 0xa3, len, rest @ ..] => match rest.get(..usize::from(*len))? {
            b"amqp:detach:list" => Some(DETACH),
            b"amqp:end:list" => Some(END),
            _ => None,
        },
        _ => None,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MootDetachFilter<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(out.remaining());
                out.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(timer) = this.hold_timer.as_mut()
                && timer.as_mut().poll(cx).is_ready()
            {
                this.release_held();
                continue;
            }
            if this.eof {
                if this.held.is_empty() && !this.raw.is_empty() {
                    // A torn last frame: hand it on for fe2o3 to report.
                    let rest = this.raw.split();
                    this.ready.extend_from_slice(&rest);
                    continue;
                }
                if !this.held.is_empty() {
                    this.release_held();
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                this.eof = true;
            } else {
                this.raw.extend_from_slice(chunk_buf.filled());
                this.split_units();
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MootDetachFilter<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream whose writes carry every performative with all its fields;
/// reads pass through.
#[derive(Debug)]
pub(crate) struct FullPerformatives<S> {
    inner: S,
    /// Written by fe2o3, not yet a whole unit.
    pending: BytesMut,
    /// Rewritten, not yet written to `inner`.
    out: BytesMut,
}

/// Rewritten bytes kept before a write waits for the socket.
const WRITE_HIGH_WATER: usize = 256 * 1024;

impl<S> FullPerformatives<S> {
    pub(crate) fn new(inner: S) -> Self {
        FullPerformatives {
            inner,
            pending: BytesMut::new(),
            out: BytesMut::new(),
        }
    }

    fn rewrite_units(&mut self) {
        while let Some(len) = unit_len(&self.pending) {
            let unit = self.pending.split_to(len);
            match padded_frame(&unit) {
                Some(padded) => self.out.extend_from_slice(&padded),
                None => self.out.extend_from_slice(&unit),
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> FullPerformatives<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

/// How many fields each performative has (AMQP 1.0 parts 2.7 and 5.3).
fn field_count(frame_type: u8, code: u64) -> Option<usize> {
    Some(match (frame_type, code) {
        (AMQP_FRAME, 0x10) => 10,       // open
        (AMQP_FRAME, 0x11) => 8,        // begin
        (AMQP_FRAME, 0x12) => 14,       // attach
        (AMQP_FRAME, 0x13) => 11,       // flow
        (AMQP_FRAME, 0x14) => 11,       // transfer
        (AMQP_FRAME, 0x15) => 6,        // disposition
        (AMQP_FRAME, 0x16) => 3,        // detach
        (AMQP_FRAME, 0x17 | 0x18) => 1, // end, close
        (SASL_FRAME, 0x40 | 0x42) => 1, // mechanisms, challenge
        (SASL_FRAME, 0x44) => 2,        // outcome
        _ => return None,
    })
}

/// Fields that have a default in AMQP but that the Python stack compares as
/// numbers, so an absent or null one must be written out: (frame type,
/// performative, field index, the default encoded).
const SPELLED_OUT_DEFAULTS: &[(u8, u64, usize, &[u8])] = &[
    (AMQP_FRAME, 0x10, 2, &[0x70, 0xff, 0xff, 0xff, 0xff]), // open.max-frame-size
    (AMQP_FRAME, 0x10, 3, &[0x60, 0xff, 0xff]),             // open.channel-max
    (AMQP_FRAME, 0x11, 4, &[0x70, 0xff, 0xff, 0xff, 0xff]), // begin.handle-max
    (AMQP_FRAME, 0x12, 3, &[0x50, 0x02]),                   // attach.snd-settle-mode
    (AMQP_FRAME, 0x12, 4, &[0x50, 0x00]),                   // attach.rcv-settle-mode
];
const NULL: &[u8] = &[0x40];

/// The frame with its performative's list filled up to all its fields
/// (nulls, or the defaults above), or `None` when it is whole already (or
/// not a performative this knows).
fn padded_frame(frame: &[u8]) -> Option<Vec<u8>> {
    let (frame_type, _, body) = frame_parts(frame)?;
    let code = performative_code(body)?;
    let full = field_count(frame_type, code)?;
    // fe2o3 writes the short descriptor form: 0x00 0x53 code.
    let list = body.get(..3).filter(|d| d[1] == 0x53).map(|_| &body[3..])?;
    let (mut fields, rest) = list_items(list)?;
    let count = fields.len();
    fields.resize(fields.len().max(full), NULL);
    let mut changed = fields.len() != count;
    for &(t, c, index, default) in SPELLED_OUT_DEFAULTS {
        if (t, c) == (frame_type, code) && fields[index] == NULL {
            fields[index] = default;
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    rebuilt_frame(frame, body, &fields, rest)
}

/// `frame` again, with its performative's list made of `fields` (`body` is
/// the frame's body, `rest` what follows the list: a transfer's payload).
fn rebuilt_frame(frame: &[u8], body: &[u8], fields: &[&[u8]], rest: &[u8]) -> Option<Vec<u8>> {
    let items_len: usize = fields.iter().map(|f| f.len()).sum();
    let header_len = frame.len() - body.len();
    let mut out = Vec::with_capacity(header_len + 12 + items_len + rest.len());
    out.extend_from_slice(&frame[..header_len]);
    out.extend_from_slice(body.get(..3)?);
    match (u8::try_from(items_len + 1), u8::try_from(fields.len())) {
        (Ok(size), Ok(count)) => out.extend_from_slice(&[0xc0, size, count]),
        _ => {
            out.push(0xd0);
            out.extend_from_slice(&u32::try_from(items_len + 4).ok()?.to_be_bytes());
            out.extend_from_slice(&u32::try_from(fields.len()).ok()?.to_be_bytes());
        }
    }
    for field in fields {
        out.extend_from_slice(field);
    }
    out.extend_from_slice(rest);
    let size = u32::try_from(out.len()).ok()?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Some(out)
}

/// Room kept in every frame the broker writes for [`FullPerformatives`] to
/// fill a performative up (eleven nulls and a longer list header at most).
const PADDING_ROOM: u32 = 64;

/// The client's Open with a `max-frame-size` smaller by [`PADDING_ROOM`], so
/// that fe2o3 leaves room in the frames it cuts for that client, or `None`
/// when the client sets no limit (or this is not an Open).
fn open_with_padding_room(frame: &[u8]) -> Option<Vec<u8>> {
    let (AMQP_FRAME, _, body) = frame_parts(frame)? else {
        return None;
    };
    if performative_code(body)? != OPEN || body.get(1) != Some(&0x53) {
        return None;
    }
    let (mut fields, rest) = list_items(body.get(3..)?)?;
    let max = match *fields.get(2)? {
        [0x70, a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        [0x52, n] => u32::from(*n),
        _ => return None,
    };
    // 512 is AMQP's smallest max-frame-size.
    let room = max.saturating_sub(PADDING_ROOM).max(512);
    let mut encoded = [0x70, 0, 0, 0, 0];
    encoded[1..].copy_from_slice(&room.to_be_bytes());
    fields[2] = &encoded;
    rebuilt_frame(frame, body, &fields, rest)
}

/// The items of an encoded AMQP list, and the bytes after it.
fn list_items(list: &[u8]) -> Option<(Vec<&[u8]>, &[u8])> {
    let (count, mut items, rest) = match *list.first()? {
        0x45 => (0, &[][..], list.get(1..)?),
        0xc0 => {
            let size = usize::from(*list.get(1)?);
            let count = usize::from(*list.get(2)?);
            (count, list.get(3..2 + size)?, list.get(2 + size..)?)
        }
        0xd0 => {
            let size = u32::from_be_bytes(list.get(1..5)?.try_into().ok()?) as usize;
            let count = u32::from_be_bytes(list.get(5..9)?.try_into().ok()?) as usize;
            (count, list.get(9..5 + size)?, list.get(5 + size..)?)
        }
        _ => return None,
    };
    let mut fields = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let len = value_len(items)?;
        fields.push(&items[..len]);
        items = &items[len..];
    }
    items.is_empty().then_some((fields, rest))
}

/// Whether an attach's source (field 5) or target (field 6) is `$cbs`.
fn attaches_cbs(body: &[u8]) -> bool {
    let address_is_cbs = |terminus: &[u8]| -> bool {
        // described (0x00), a small-ulong descriptor, then the terminus list
        let Some(list) = terminus
            .get(3..)
            .filter(|_| terminus.starts_with(&[0x00, 0x53]))
        else {
            return false;
        };
        let Some((fields, _)) = list_items(list) else {
            return false;
        };
        match fields.first() {
            Some([0xa1 | 0xa3, len, address @ ..]) => {
                address.get(..usize::from(*len)) == Some(b"$cbs")
            }
            _ => false,
        }
    };
    body.get(3..)
        .and_then(list_items)
        .is_some_and(|(fields, _)| fields.iter().skip(5).take(2).any(|t| address_is_cbs(t)))
}

/// The encoded length of the AMQP value at the start of `buf`.
fn value_len(buf: &[u8]) -> Option<usize> {
    let width = |n: usize| -> Option<usize> {
        let bytes = buf.get(1..1 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
        Some(1 + n + len)
    };
    let len = match *buf.first()? {
        0x00 => {
            let descriptor = value_len(buf.get(1..)?)?;
            1 + descriptor + value_len(buf.get(1 + descriptor..)?)?
        }
        0x40..=0x45 => 1,
        0x50..=0x56 => 2,
        0x60..=0x61 => 3,
        0x70..=0x74 => 5,
        0x80..=0x84 => 9,
        0x94 | 0x98 => 17,
        0xa0 | 0xa1 | 0xa3 | 0xc0 | 0xc1 | 0xe0 => width(1)?,
        0xb0 | 0xb1 | 0xb3 | 0xd0 | 0xd1 | 0xf0 => width(4)?,
        _ => return None,
    };
    (buf.len() >= len).then_some(len)
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FullPerformatives<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.out.len() >= WRITE_HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        this.pending.extend_from_slice(buf);
        this.rewrite_units();
        // Start the write now; a socket that is not ready wakes us later.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FullPerformatives<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(channel: u16, code: u8, payload: &[u8]) -> Vec<u8> {
        let size = (FRAME_HEADER_LEN + 3 + payload.len()) as u32;
        let mut f = size.to_be_bytes().to_vec();
        f.extend_from_slice(&[2, 0]);
        f.extend_from_slice(&channel.to_be_bytes());
        f.extend_from_slice(&[0x00, 0x53, code]);
        f.extend_from_slice(payload);
        f
    }

    /// An attach of a link whose source is `address`.
    fn attach(channel: u16, address: &[u8]) -> Vec<u8> {
        let mut source = vec![0x00, 0x53, 0x28, 0xc0, 3 + address.len() as u8, 0x01, 0xa1];
        source.push(address.len() as u8);
        source.extend_from_slice(address);
        let mut items = vec![0xa1, 0x01, b'n', 0x43, 0x42, 0x40, 0x40];
        items.extend_from_slice(&source);
        items.push(0x40);
        let mut list = vec![0xc0, items.len() as u8 + 1, 7];
        list.extend_from_slice(&items);
        frame(channel, 0x12, &list)
    }

    async fn read_through(input: Vec<Vec<u8>>, pause: Duration, grace: Duration) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            for (i, part) in input.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(pause).await;
                }
                client.write_all(&part).await.unwrap();
            }
            client.shutdown().await.unwrap();
        });
        let mut filtered = MootDetachFilter::new(server, grace);
        let mut out = Vec::new();
        filtered.read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn detaches_that_an_end_follows_are_dropped() {
        let header = b"AMQP\x00\x01\x00\x00".to_vec();
        let cbs = attach(1, b"$cbs");
        let transfer = frame(1, 0x14, b"payload");
        let (d0, d1, end) = (
            frame(1, 0x16, b"a"),
            frame(1, 0x16, b"b"),
            frame(1, 0x17, b""),
        );
        let other_detach = frame(2, 0x16, b"c");
        let input = vec![
            header.clone(),
            cbs.clone(),
            transfer.clone(),
            d0,
            other_detach.clone(),
            d1[..5].to_vec(),
            d1[5..].to_vec(),
            end.clone(),
        ];
        let out = read_through(input, Duration::from_millis(2), Duration::from_millis(200)).await;
        // Channel 2's detach stays: no CBS session there.
        let expected = [header, cbs, transfer, other_detach, end].concat();
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn a_detach_without_an_end_goes_on_after_the_grace() {
        let cbs = attach(3, b"$cbs");
        let detach = frame(3, 0x16, b"x");
        let begin = frame(4, 0x11, b"y");
        let input = [cbs.clone(), detach.clone(), begin.clone()];
        let started = std::time::Instant::now();
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(&input.concat()).await.unwrap();
        let mut filtered = MootDetachFilter::new(server, Duration::from_millis(30));
        let mut out = vec![0u8; cbs.len() + detach.len() + begin.len()];
        filtered.read_exact(&mut out).await.unwrap();
        assert_eq!(out, input.concat());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn the_client_frame_limit_leaves_room_for_padding() {
        // open: container-id "c", hostname null, max-frame-size 65536
        let open = frame(
            0,
            0x10,
            &[
                0xc0, 0x0a, 0x03, 0xa1, 0x01, b'c', 0x40, 0x70, 0x00, 0x01, 0x00, 0x00,
            ],
        );
        let shrunk = open_with_padding_room(&open).unwrap();
        assert_eq!(
            &shrunk[11..],
            &[
                0xc0, 0x0a, 0x03, 0xa1, 0x01, b'c', 0x40, 0x70, 0x00, 0x00, 0xff, 0xc0
            ]
        );
        let unlimited = frame(0, 0x10, &[0xc0, 0x05, 0x02, 0xa1, 0x01, b'c', 0x40]);
        assert_eq!(open_with_padding_room(&unlimited), None);
    }

    #[test]
    fn only_cbs_attaches_mark_their_session() {
        assert_eq!(
            next_unit(&attach(5, b"$cbs")).map(|u| u.1),
            Some(Unit::CbsAttach { channel: 5 })
        );
        assert_eq!(
            next_unit(&attach(5, b"eh1/ConsumerGroups/$Default/Partitions/0")).map(|u| u.1),
            Some(Unit::Other)
        );
        assert_eq!(
            next_unit(&attach(5, b"$management")).map(|u| u.1),
            Some(Unit::Other)
        );
    }

    #[test]
    fn units_are_recognised_in_every_descriptor_form() {
        let end = frame(7, 0x17, b"");
        assert_eq!(next_unit(&end), Some((end.len(), Unit::End { channel: 7 })));
        let mut long = 18u32.to_be_bytes().to_vec();
        long.extend_from_slice(&[2, 0, 0, 9, 0x00, 0x80]);
        long.extend_from_slice(&0x16u64.to_be_bytes());
        assert_eq!(next_unit(&long), Some((18, Unit::Detach { channel: 9 })));
        let name = b"amqp:end:list";
        let mut symbolic = ((FRAME_HEADER_LEN + 3 + name.len()) as u32)
            .to_be_bytes()
            .to_vec();
        symbolic.extend_from_slice(&[2, 0, 0, 1, 0x00, 0xa3, name.len() as u8]);
        symbolic.extend_from_slice(name);
        assert_eq!(
            next_unit(&symbolic).map(|u| u.1),
            Some(Unit::End { channel: 1 })
        );
        let heartbeat = 8u32
            .to_be_bytes()
            .iter()
            .chain(&[2, 0, 0, 0])
            .copied()
            .collect::<Vec<_>>();
        assert_eq!(next_unit(&heartbeat), Some((8, Unit::Other)));
        let mut sasl = frame(0, 0x16, b"");
        sasl[5] = SASL_FRAME;
        assert_eq!(next_unit(&sasl).map(|u| u.1), Some(Unit::Other));
        assert_eq!(next_unit(b"AMQP\x03\x01"), None);
    }

    #[test]
    fn short_performatives_are_filled_with_nulls() {
        // end with no error, as list0
        let end = {
            let mut f = 12u32.to_be_bytes().to_vec();
            f.extend_from_slice(&[2, 0, 0, 3, 0x00, 0x53, 0x17, 0x45]);
            f
        };
        let padded = padded_frame(&end).unwrap();
        assert_eq!(&padded[..4], &15u32.to_be_bytes());
        assert_eq!(&padded[8..], &[0x00, 0x53, 0x17, 0xc0, 0x02, 0x01, 0x40]);
        // transfer with 2 fields (handle 0, delivery-id 5) and a payload
        let mut transfer = frame(1, 0x14, &[0xc0, 0x04, 0x02, 0x43, 0x52, 0x05]);
        transfer.extend_from_slice(b"PAYLOAD");
        let size = transfer.len() as u32;
        transfer[..4].copy_from_slice(&size.to_be_bytes());
        let padded = padded_frame(&transfer).unwrap();
        let mut want = (size + 9).to_be_bytes().to_vec();
        want.extend_from_slice(&[2, 0, 0, 1, 0x00, 0x53, 0x14, 0xc0, 13, 11, 0x43, 0x52, 0x05]);
        want.extend_from_slice(&[0x40; 9]);
        want.extend_from_slice(b"PAYLOAD");
        assert_eq!(padded, want);
        // a begin without handle-max gets it spelled out
        let begin = frame(
            0,
            0x11,
            &[0xc0, 0x07, 0x04, 0x60, 0x00, 0x01, 0x43, 0x43, 0x43],
        );
        let mut begin = begin;
        let size = begin.len() as u32;
        begin[..4].copy_from_slice(&size.to_be_bytes());
        let padded = padded_frame(&begin).unwrap();
        assert_eq!(
            &padded[11..],
            &[
                0xc0, 15, 8, 0x60, 0x00, 0x01, 0x43, 0x43, 0x43, 0x70, 0xff, 0xff, 0xff, 0xff,
                0x40, 0x40, 0x40
            ]
        );
        // whole already, or not a performative: untouched
        let mut detach = frame(0, 0x16, &[0xc0, 0x04, 0x03, 0x43, 0x41, 0x40]);
        let size = detach.len() as u32;
        detach[..4].copy_from_slice(&size.to_be_bytes());
        assert_eq!(padded_frame(&detach), None);
        assert_eq!(padded_frame(b"AMQP\x00\x01\x00\x00"), None);
    }

    #[tokio::test]
    async fn writes_come_out_whole_and_padded_in_order() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut writer = FullPerformatives::new(client);
        let header = b"AMQP\x00\x01\x00\x00".to_vec();
        let end = {
            let mut f = 12u32.to_be_bytes().to_vec();
            f.extend_from_slice(&[2, 0, 0, 3, 0x00, 0x53, 0x17, 0x45]);
            f
        };
        let big = vec![0x41u8; 10_000];
        let mut opaque = ((FRAME_HEADER_LEN + big.len()) as u32)
            .to_be_bytes()
            .to_vec();
        opaque.extend_from_slice(&[2, 0, 0, 0]);
        opaque.extend_from_slice(&big);
        let input = [header.clone(), end.clone(), opaque.clone()].concat();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        });
        for piece in input.chunks(7) {
            writer.write_all(piece).await.unwrap();
        }
        writer.shutdown().await.unwrap();
        drop(writer);
        let got = reader.await.unwrap();
        let want = [header, padded_frame(&end).unwrap(), opaque].concat();
        assert_eq!(got, want);
    }
}
