//! QUIC Initial packets as an attacker sends them, for the flood benchmark and the flood tests:
//! Initials carrying a real TLS ClientHello (quinn-proto's client side, one fresh connection
//! attempt each), and Initials that are correctly protected but carry garbage where the
//! ClientHello should be. Sent over plain UDP sockets by the caller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::BytesMut;
use quinn_proto::crypto::rustls::QuicClientConfig;
use rustls::quic::Version;
use rustls::Side;

/// The client side of a member whose certificate comes from a CA of its own: its Initials carry
/// a genuine ClientHello for the cluster's ALPN.
pub struct Hello {
    config: quinn_proto::ClientConfig,
    _dir: tempfile::TempDir,
}

impl Hello {
    /// A foreign CA and certificate in a temporary directory.
    pub fn new() -> Result<Hello> {
        let dir = tempfile::tempdir()?;
        eccluster::tls::ca_init(dir.path(), "intruder")?;
        eccluster::tls::ca_issue(dir.path(), &["intruder".to_owned()])?;
        let identity = eccluster::tls::TlsIdentity::load(dir.path(), "intruder")?;
        let crypto = QuicClientConfig::try_from(identity.client_config()?).context("QUIC client crypto")?;
        Ok(Hello { config: quinn_proto::ClientConfig::new(Arc::new(crypto)), _dir: dir })
    }

    /// One Initial of a fresh connection attempt to `to` (naming member `name`).
    pub fn initial(&self, to: SocketAddr, name: &str) -> Result<Vec<u8>> {
        let mut endpoint = endpoint();
        let now = Instant::now();
        let (_, mut conn) = endpoint.connect(now, self.config.clone(), to, name).context("connect")?;
        let mut buf = Vec::new();
        let transmit = conn.poll_transmit(now, 1, &mut buf).context("no Initial to send")?;
        buf.truncate(transmit.size);
        Ok(buf)
    }

    /// A client endpoint that keeps its connection attempts, to follow Retries.
    pub fn dialler(&self) -> Dialler {
        Dialler { endpoint: endpoint(), config: self.config.clone(), conns: Vec::new(), buf: Vec::new() }
    }
}

fn endpoint() -> quinn_proto::Endpoint {
    quinn_proto::Endpoint::new(Arc::new(quinn_proto::EndpointConfig::default()), None, false, None)
}

/// Many connection attempts from one socket that answer Retries (and so get their address
/// validated) but never finish the handshake.
pub struct Dialler {
    endpoint: quinn_proto::Endpoint,
    config: quinn_proto::ClientConfig,
    conns: Vec<quinn_proto::Connection>,
    buf: Vec<u8>,
}

impl Dialler {
    /// Starts an attempt to `to`; returns its Initial.
    pub fn start(&mut self, to: SocketAddr, name: &str) -> Result<Vec<u8>> {
        let now = Instant::now();
        let (handle, mut conn) = self.endpoint.connect(now, self.config.clone(), to, name).context("connect")?;
        self.buf.clear();
        let transmit = conn.poll_transmit(now, 1, &mut self.buf).context("no Initial to send")?;
        anyhow::ensure!(handle.0 == self.conns.len(), "connection handles are dense");
        self.conns.push(conn);
        Ok(self.buf[..transmit.size].to_vec())
    }

    /// Feeds a datagram from `from` if it is a Retry; returns the Initial that echoes its token.
    /// Anything else (the member's handshake flight) is left unanswered, so that a validated
    /// attempt never finishes.
    pub fn handle_retry(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<Vec<u8>> {
        // Long header (0x80) of type Retry (0x30), QUIC v1.
        if datagram.first()? & 0xB0 != 0xB0 {
            return None;
        }
        let now = Instant::now();
        let event = self.endpoint.handle(now, from, None, None, BytesMut::from(datagram), &mut self.buf);
        let Some(quinn_proto::DatagramEvent::ConnectionEvent(handle, event)) = event else { return None };
        let conn = self.conns.get_mut(handle.0)?;
        conn.handle_event(event);
        let mut buf = Vec::new();
        let transmit = conn.poll_transmit(now, 1, &mut buf)?;
        buf.truncate(transmit.size);
        Some(buf)
    }
}

/// A client Initial of QUIC v1, protected with the keys derived from its own destination
/// connection id (as every Initial is), carrying a CRYPTO frame of `garbage` and padded to
/// 1,200 bytes: it passes packet decryption and fails in TLS.
pub fn garbage_initial(dcid: &[u8; 8], scid: &[u8; 8], garbage: &[u8]) -> Result<Vec<u8>> {
    const SIZE: usize = 1200;
    const TAG: usize = 16;
    const PN_LEN: usize = 4;
    anyhow::ensure!(garbage.len() <= 1000, "at most 1,000 bytes of garbage");
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .context("QUIC suite")?;
    let keys = suite.keys(dcid, Side::Client, Version::V1);

    let mut packet = vec![0xC0 | (PN_LEN as u8 - 1)];
    packet.extend_from_slice(&1u32.to_be_bytes());
    packet.push(dcid.len() as u8);
    packet.extend_from_slice(dcid);
    packet.push(scid.len() as u8);
    packet.extend_from_slice(scid);
    packet.push(0); // no token
    let length_at = packet.len();
    packet.extend_from_slice(&[0, 0]); // Length, two-byte varint, filled in below
    let pn_at = packet.len();
    packet.extend_from_slice(&[0; PN_LEN]);
    let header_len = packet.len();
    let payload_len = SIZE - header_len - TAG;
    let mut payload = vec![0x06, 0x00, 0x40 | (garbage.len() >> 8) as u8, garbage.len() as u8];
    payload.extend_from_slice(garbage);
    payload.resize(payload_len, 0); // PADDING frames
    let length = PN_LEN + payload_len + TAG;
    packet[length_at] = 0x40 | (length >> 8) as u8;
    packet[length_at + 1] = length as u8;

    let tag = keys
        .local
        .packet
        .encrypt_in_place(0, &packet[..header_len], &mut payload)
        .map_err(|e| anyhow::anyhow!("sealing: {e:?}"))?;
    packet.extend_from_slice(&payload);
    packet.extend_from_slice(tag.as_ref());
    let sample_at = pn_at + 4;
    let sample: Vec<u8> = packet[sample_at..sample_at + keys.local.header.sample_len()].to_vec();
    let (first, rest) = packet.split_at_mut(1);
    keys.local
        .header
        .encrypt_in_place(&sample, &mut first[0], &mut rest[pn_at - 1..pn_at - 1 + PN_LEN])
        .map_err(|e| anyhow::anyhow!("header protection: {e:?}"))?;
    Ok(packet)
}
