//! Snapshot files: the whole `state` keyspace at one applied log id, streamed record by
//! record, checksummed, written to a temporary file, fsynced and renamed into place.
//!
//! Layout (integers big-endian):
//! ```text
//! "ASPNSNAP" | version u8 | meta_len u32 | meta (postcard SnapshotMeta)
//! { key_len u32 | value_len u32 | key | value }*      records in key order
//! 0xFFFFFFFF                                         end marker
//! record_count u64 | crc32 u32                       crc32 of every byte before it
//! ```
//! Nothing is truncated at any size: records are streamed, and the reader refuses a file
//! whose checksum, count or framing does not match.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use openraft::SnapshotMeta;

use crate::error::{Error, Result};
use crate::limits::MAX_SNAPSHOT_RECORD_BYTES;
use crate::raft::types::{NodeId, RaftNode};

const MAGIC: &[u8; 8] = b"ASPNSNAP";
const FORMAT_V1: u8 = 1;
const END_MARKER: u32 = u32::MAX;
/// Largest encoded snapshot meta, in bytes (membership of a large cluster fits easily).
const MAX_META_BYTES: usize = 1024 * 1024;

pub type Meta = SnapshotMeta<NodeId, RaftNode>;

/// Name of the current snapshot inside the snapshot dir.
pub fn current_path(dir: &Path) -> PathBuf {
    dir.join("current.snap")
}

/// A fresh temporary path inside the snapshot dir.
pub fn temp_path(dir: &Path, purpose: &str) -> PathBuf {
    let nonce: u64 = rand::random();
    dir.join(format!("{purpose}-{nonce:016x}.tmp"))
}

/// Removes temporary files left by a crash.
pub fn remove_temporaries(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Streams records into a new snapshot file.
pub struct SnapshotWriter {
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    count: u64,
    path: PathBuf,
}

impl SnapshotWriter {
    pub fn create(path: &Path, meta: &Meta) -> Result<SnapshotWriter> {
        let file = File::create(path)?;
        let mut w = SnapshotWriter {
            out: BufWriter::new(file),
            crc: crc32fast::Hasher::new(),
            count: 0,
            path: path.to_path_buf(),
        };
        let meta_bytes = postcard::to_stdvec(meta)
            .map_err(|e| Error::internal(format!("encode snapshot meta: {e}")))?;
        w.put(MAGIC)?;
        w.put(&[FORMAT_V1])?;
        w.put(&len32(meta_bytes.len())?.to_be_bytes())?;
        w.put(&meta_bytes)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)?;
        Ok(())
    }

    pub fn record(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.len() > MAX_SNAPSHOT_RECORD_BYTES || value.len() > MAX_SNAPSHOT_RECORD_BYTES {
            return Err(Error::internal("snapshot record over the record limit"));
        }
        self.put(&len32(key.len())?.to_be_bytes())?;
        self.put(&len32(value.len())?.to_be_bytes())?;
        self.put(key)?;
        self.put(value)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the trailer, fsyncs, and returns the path of the finished file.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.put(&END_MARKER.to_be_bytes())?;
        let count = self.count;
        self.put(&count.to_be_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_be_bytes())?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(format!("snapshot write: {}", e.error())))?;
        file.sync_all()?;
        Ok(self.path)
    }
}

fn len32(n: usize) -> Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n != END_MARKER)
        .ok_or_else(|| Error::internal("length does not fit a snapshot frame"))
}

/// Renames a finished file over `dest` and fsyncs the directory, so the switch is atomic
/// and durable.
pub fn publish(tmp: &Path, dest: &Path) -> Result<()> {
    std::fs::rename(tmp, dest)?;
    if let Some(dir) = dest.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads a snapshot file, checking framing, count and checksum.
pub struct SnapshotReader<R: Read> {
    input: R,
    crc: crc32fast::Hasher,
    count: u64,
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads the header; returns the reader positioned at the first record.
    pub fn open(input: R) -> Result<(SnapshotReader<R>, Meta)> {
        let mut r = SnapshotReader {
            input,
            crc: crc32fast::Hasher::new(),
            count: 0,
            done: false,
        };
        let mut magic = [0u8; 8];
        r.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(Error::corrupt("not an aspen snapshot file"));
        }
        let mut version = [0u8; 1];
        r.take(&mut version)?;
        if version[0] != FORMAT_V1 {
            return Err(Error::corrupt(format!(
                "unknown snapshot format version {}",
                version[0]
            )));
        }
        let meta_len = r.u32()? as usize;
        if meta_len > MAX_META_BYTES {
            return Err(Error::corrupt("snapshot meta too large"));
        }
        let mut meta_bytes = vec![0u8; meta_len];
        r.take(&mut meta_bytes)?;
        let meta: Meta = crate::store::decode_exact(&meta_bytes, "snapshot meta")?;
        Ok((r, meta))
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input
            .read_exact(buf)
            .map_err(|e| Error::corrupt(format!("snapshot truncated: {e}")))?;
        self.crc.update(buf);
        Ok(())
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// The next record, or `None` after the trailer has been verified.
    pub fn next_record(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let key_len = self.u32()?;
        if key_len == END_MARKER {
            let mut count = [0u8; 8];
            self.take(&mut count)?;
            let expected_crc = self.crc.clone().finalize();
            let mut crc = [0u8; 4];
            self.input
                .read_exact(&mut crc)
                .map_err(|e| Error::corrupt(format!("snapshot truncated: {e}")))?;
            if u64::from_be_bytes(count) != self.count {
                return Err(Error::corrupt("snapshot record count mismatch"));
            }
            if u32::from_be_bytes(crc) != expected_crc {
                return Err(Error::corrupt("snapshot checksum mismatch"));
            }
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra)? != 0 {
                return Err(Error::corrupt("bytes after the snapshot trailer"));
            }
            self.done = true;
            return Ok(None);
        }
        let value_len = self.u32()?;
        if key_len as usize > MAX_SNAPSHOT_RECORD_BYTES
            || value_len as usize > MAX_SNAPSHOT_RECORD_BYTES
        {
            return Err(Error::corrupt("snapshot record over the record limit"));
        }
        let mut key = vec![0u8; key_len as usize];
        self.take(&mut key)?;
        let mut value = vec![0u8; value_len as usize];
        self.take(&mut value)?;
        self.count += 1;
        Ok(Some((key, value)))
    }
}

/// Opens a snapshot file for reading.
pub fn open_file(path: &Path) -> Result<(SnapshotReader<BufReader<File>>, Meta)> {
    SnapshotReader::open(BufReader::new(File::open(path)?))
}

/// Reads only the meta of a snapshot file.
pub fn read_meta(path: &Path) -> Result<Meta> {
    Ok(open_file(path)?.1)
}

/// Copies a snapshot from `input` into a new temporary file in `dir`, verifying it fully;
/// returns the temporary path and the meta.
pub fn verified_copy<R: Read>(input: R, dir: &Path) -> Result<(PathBuf, Meta)> {
    let (mut reader, meta) = SnapshotReader::open(BufReader::new(input))?;
    let tmp = temp_path(dir, "install");
    let result = (|| {
        let mut writer = SnapshotWriter::create(&tmp, &meta)?;
        while let Some((k, v)) = reader.next_record()? {
            writer.record(&k, &v)?;
        }
        writer.finish()
    })();
    match result {
        Ok(path) => Ok((path, meta)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{LogId, StoredMembership};

    fn meta() -> Meta {
        Meta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 9)),
            last_membership: StoredMembership::default(),
            snapshot_id: "t".into(),
        }
    }

    #[test]
    fn roundtrip_and_corruption_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let mut w = SnapshotWriter::create(&path, &meta()).unwrap();
        for i in 0..1000u32 {
            w.record(&i.to_be_bytes(), &vec![7u8; (i % 50) as usize])
                .unwrap();
        }
        w.finish().unwrap();
        let (mut r, m) = open_file(&path).unwrap();
        assert_eq!(m, meta());
        let mut n = 0;
        while let Some((k, v)) = r.next_record().unwrap() {
            assert_eq!(k, (n as u32).to_be_bytes());
            assert_eq!(v.len(), n % 50);
            n += 1;
        }
        assert_eq!(n, 1000);

        // Flip one byte in the middle: the checksum must catch it.
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        let bad = dir.path().join("bad");
        std::fs::write(&bad, &bytes).unwrap();
        let err = (|| -> Result<()> {
            let (mut r, _) = open_file(&bad)?;
            while r.next_record()?.is_some() {}
            Ok(())
        })();
        assert!(err.is_err());

        // Truncation is caught too.
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&bad, &good[..good.len() - 3]).unwrap();
        assert!(verified_copy(File::open(&bad).unwrap(), dir.path()).is_err());
        let (copy, m2) = verified_copy(File::open(&path).unwrap(), dir.path()).unwrap();
        assert_eq!(m2, meta());
        assert_eq!(std::fs::read(copy).unwrap(), good);
    }
}
