//! Serf's msgpack RPC on the wire: an incremental msgpack reader, one RPC connection (handshake,
//! request, streamed records) and the decoding of `members` replies. Used by `serf.rs`.

use super::*;

pub(super) fn parse_members(body: &Value) -> Result<Vec<(String, String)>> {
    let list = map_get(body, "Members")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("members reply has no Members array"))?;
    list.iter()
        .map(|m| {
            let name = map_get(m, "Name")
                .and_then(as_text)
                .ok_or_else(|| anyhow!("member without Name"))?;
            let status = map_get(m, "Status")
                .and_then(as_text)
                .ok_or_else(|| anyhow!("member {name} without Status"))?;
            Ok((name, status))
        })
        .collect()
}

/// Value of `key` in a msgpack map whose keys are strings (str or bin: Go encoders differ).
pub(super) fn map_get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| match k {
            Value::String(s) => s.as_bytes() == key.as_bytes(),
            Value::Binary(b) => b.as_slice() == key.as_bytes(),
            _ => false,
        })
        .map(|(_, v)| v)
}

pub(super) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Value::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Incremental msgpack reader: bytes go in as they arrive from the socket, complete values
/// come out; a value split across reads stays buffered until its last byte is there.
#[derive(Default)]
pub struct MsgpackBuf {
    buf: Vec<u8>,
}

impl MsgpackBuf {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete value, `None` if more bytes are needed, an error if the bytes are
    /// not msgpack or nest deeper than `MAX_MSGPACK_DEPTH`.
    pub fn next_value(&mut self) -> Result<Option<Value>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let mut rest: &[u8] = &self.buf;
        match rmpv::decode::read_value_with_max_depth(&mut rest, MAX_MSGPACK_DEPTH) {
            Ok(value) => {
                let used = self.buf.len() - rest.len();
                self.buf.drain(..used);
                Ok(Some(value))
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(anyhow!("malformed msgpack from serf RPC: {e}")),
        }
    }
}

/// One RPC connection to one agent, handshaken.
pub(super) struct RpcConn {
    stream: TcpStream,
    inbuf: MsgpackBuf,
    seq: u64,
}

impl RpcConn {
    pub(super) async fn connect(addr: SocketAddr) -> Result<RpcConn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut conn = RpcConn {
            stream,
            inbuf: MsgpackBuf::default(),
            seq: 0,
        };
        let version = Value::Map(vec![(Value::from("Version"), Value::from(1u32))]);
        conn.call("handshake", Some(version), false)
            .await
            .context("serf RPC handshake")?;
        Ok(conn)
    }

    /// Sends one command (header, then `body` if any); reads the response header, checks its
    /// Seq and Error, and reads the response body if `expect_body`.
    pub(super) async fn call(
        &mut self,
        command: &str,
        body: Option<Value>,
        expect_body: bool,
    ) -> Result<Option<Value>> {
        let seq = self.send(command, body.as_ref()).await?;
        self.read_header(command, seq).await?;
        if expect_body {
            Ok(Some(self.read_value().await?))
        } else {
            Ok(None)
        }
    }

    /// Sends one request (header, then `body` if any) and returns its Seq.
    pub(super) async fn send(&mut self, command: &str, body: Option<&Value>) -> Result<u64> {
        let seq = self.seq;
        self.seq += 1;
        let header = Value::Map(vec![
            (Value::from("Command"), Value::from(command)),
            (Value::from("Seq"), Value::from(seq)),
        ]);
        let mut out = Vec::with_capacity(64);
        rmpv::encode::write_value(&mut out, &header)?;
        if let Some(body) = body {
            rmpv::encode::write_value(&mut out, body)?;
        }
        self.stream.write_all(&out).await?;
        Ok(seq)
    }

    /// Reads one response header and checks that it carries `seq` and no Error.
    pub(super) async fn read_header(&mut self, command: &str, seq: u64) -> Result<()> {
        let reply = self.read_value().await?;
        let reply_seq = map_get(&reply, "Seq").and_then(Value::as_u64);
        if reply_seq != Some(seq) {
            bail!("serf RPC {command}: reply Seq {reply_seq:?}, expected {seq}");
        }
        let error = match map_get(&reply, "Error") {
            None | Some(Value::Nil) => String::new(),
            Some(v) => {
                as_text(v).ok_or_else(|| anyhow!("serf RPC {command}: Error is not a string"))?
            }
        };
        if !error.is_empty() {
            bail!("serf RPC {command}: {error}");
        }
        Ok(())
    }

    /// Reads one record of a stream started with Seq `seq` (a header, then the record).
    pub(super) async fn read_record(&mut self, seq: u64) -> Result<Value> {
        self.read_header("query record", seq).await?;
        self.read_value().await
    }

    pub(super) async fn read_value(&mut self) -> Result<Value> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(value) = self.inbuf.next_value()? {
                return Ok(value);
            }
            if self.inbuf.buffered() > MAX_RPC_BUFFER {
                bail!("serf RPC reply larger than {MAX_RPC_BUFFER} bytes");
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("serf agent closed the RPC connection");
            }
            self.inbuf.push(&chunk[..n]);
        }
    }
}
