//! Framing: every message on an Aspen connection is
//! `length u32 BE | protocol version u8 | postcard body`, where `length` counts the version
//! byte and the body and never exceeds `MAX_FRAME_BYTES`. A frame with another version,
//! an oversized length or an undecodable body is an error; the connection is then closed.

use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{FRAME_READ_CHUNK_BYTES, MAX_FRAME_BYTES, WRITE_COALESCE_BYTES};

/// Version of the wire protocol; a peer speaking another is refused.
pub const PROTOCOL_VERSION: u8 = 1;

/// Encodes one frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>> {
    // Encode after a 5-byte placeholder, then fill the header in: one copy of the body.
    let mut out = postcard::to_extend(msg, vec![0u8, 0, 0, 0, PROTOCOL_VERSION])
        .map_err(|e| Error::internal(format!("encode frame: {e}")))?;
    let len = out.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(Error::new(
            ErrorKind::TooBig,
            format!("message of {len} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit"),
        ));
    }
    let len32 = u32::try_from(len).map_err(|_| Error::internal("frame length overflow"))?;
    if let Some(header) = out.get_mut(0..4) {
        header.copy_from_slice(&len32.to_be_bytes());
    }
    Ok(out)
}

/// Reads one frame body; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>> {
    // The stream may end cleanly only before a frame's first byte; an end inside the
    // header is a truncated frame like an end inside the body.
    let mut header = [0u8; 4];
    let first = loop {
        match r.read(&mut header).await {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if first == 0 {
        return Ok(None);
    }
    if let Some(rest) = header.get_mut(first..) {
        r.read_exact(rest).await?;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(Error::corrupt("empty frame"));
    }
    if len > MAX_FRAME_BYTES {
        return Err(Error::new(
            ErrorKind::TooBig,
            format!("frame of {len} bytes exceeds the {MAX_FRAME_BYTES}-byte limit"),
        ));
    }
    let mut version = [0u8; 1];
    r.read_exact(&mut version).await?;
    if version[0] != PROTOCOL_VERSION {
        return Err(Error::corrupt(format!(
            "protocol version {} (this node speaks {PROTOCOL_VERSION})",
            version[0]
        )));
    }
    // Memory follows the bytes that arrive, not the length a peer claims.
    let want = len - 1;
    let mut body = Vec::with_capacity(want.min(FRAME_READ_CHUNK_BYTES));
    let got = r.take(want as u64).read_to_end(&mut body).await?;
    if got != want {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(body))
}

/// Decodes a frame body, refusing trailing bytes.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let (msg, rest) = postcard::take_from_bytes(body)
        .map_err(|e| Error::corrupt(format!("undecodable frame: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::corrupt("trailing bytes in frame"));
    }
    Ok(msg)
}

/// Reads and decodes one message; a clean end of stream is an error here.
pub async fn read_msg<R: AsyncRead + Unpin, T: DeserializeOwned>(r: &mut R) -> Result<T> {
    match read_frame(r).await? {
        Some(body) => decode_body(&body),
        None => Err(Error::io("connection closed")),
    }
}

/// Writes queued frames until the queue closes or the connection fails. Frames that are
/// already waiting go out together in one write (fewer syscalls under load); a frame
/// larger than the buffer is written straight through.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    wr: W,
    rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<()> {
    let mut w = tokio::io::BufWriter::with_capacity(WRITE_COALESCE_BYTES, wr);
    while let Some(frame) = rx.recv().await {
        w.write_all(&frame).await?;
        while let Ok(more) = rx.try_recv() {
            w.write_all(&more).await?;
        }
        w.flush().await?;
    }
    Ok(())
}

pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, msg: &T) -> Result<()> {
    let bytes = encode_frame(msg)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roundtrip_and_refusals() {
        let bytes = encode_frame(&(1u32, "hello".to_string())).unwrap();
        let mut cur = std::io::Cursor::new(bytes.clone());
        let m: (u32, String) = read_msg(&mut cur).await.unwrap();
        assert_eq!(m, (1, "hello".into()));

        let mut wrong_version = bytes.clone();
        wrong_version[4] = 99;
        let err = read_frame(&mut std::io::Cursor::new(wrong_version))
            .await
            .unwrap_err();
        assert!(err.message.contains("protocol version 99"), "{err}");

        let mut huge = vec![0xff, 0xff, 0xff, 0xff, PROTOCOL_VERSION];
        huge.extend_from_slice(&[0; 16]);
        let err = read_frame(&mut std::io::Cursor::new(huge))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooBig);

        let truncated = bytes[..bytes.len() - 2].to_vec();
        assert!(read_frame(&mut std::io::Cursor::new(truncated))
            .await
            .is_err());

        assert!(read_frame(&mut std::io::Cursor::new(Vec::new()))
            .await
            .unwrap()
            .is_none());
        assert!(decode_body::<(u32, String)>(&[0xff, 0xff, 0xff]).is_err());
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(encode_frame(&big).unwrap_err().kind, ErrorKind::TooBig);
    }
}
