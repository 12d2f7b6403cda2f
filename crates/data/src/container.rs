//! The file container of checkpoints, models and the featurization cache:
//! a small header around a bincode payload, written atomically.
//!
//! Layout, all integers little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic: `FCHECKPT` checkpoints, `FCMODEL\0` models, `FCFEAT\0\0` cached features |
//! | 4 | format version (currently 1) |
//! | 8 | payload length |
//! | 4 | CRC-32 of the payload |
//! | … | payload: the value, bincode-encoded through serde |
//!
//! A file is written to a temporary name beside its destination, flushed to
//! disk, then renamed over it, so a crash leaves either the old file or the
//! new one, never half of one. Reading checks every field before decoding,
//! so a truncated or corrupted file is refused with an error that names it.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The kind of file, told apart by its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A training checkpoint: everything needed to resume.
    Checkpoint,
    /// A trained model: configuration and weights only.
    Model,
    /// Cached fingerprints of a data file.
    Features,
}

impl FileKind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Checkpoint => b"FCHECKPT",
            FileKind::Model => b"FCMODEL\0",
            FileKind::Features => b"FCFEAT\0\0",
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileKind::Checkpoint => "checkpoint",
            FileKind::Model => "model",
            FileKind::Features => "feature cache",
        }
    }
}

/// The container format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Why a container file could not be written or read.
#[derive(Debug)]
pub struct FileError {
    path: PathBuf,
    kind: FileErrorKind,
}

/// The ways reading or writing a file can fail.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileErrorKind {
    /// The operating system refused.
    Io(std::io::Error),
    /// The file does not start with the expected magic bytes.
    NotThisKind {
        /// What was expected.
        expected: &'static str,
    },
    /// The file was written by a format version this build cannot read.
    UnsupportedVersion(u32),
    /// The file is shorter than its header says.
    Truncated {
        /// Bytes the header promises.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The payload does not match its checksum.
    Corrupted,
    /// The payload passed its checksum but does not decode.
    Decode(String),
}

impl FileError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> &FileErrorKind {
        &self.kind
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            FileErrorKind::Io(err) => write!(f, "{path}: {err}"),
            FileErrorKind::NotThisKind { expected } => {
                write!(f, "{path}: not a ferrochem {expected} file")
            }
            FileErrorKind::UnsupportedVersion(version) => write!(
                f,
                "{path}: written in format version {version}; this build reads version {FORMAT_VERSION}"
            ),
            FileErrorKind::Truncated { expected, found } => write!(
                f,
                "{path}: truncated: the header promises {expected} bytes, the file has {found}"
            ),
            FileErrorKind::Corrupted => {
                write!(f, "{path}: corrupted: the contents do not match their checksum")
            }
            FileErrorKind::Decode(err) => write!(f, "{path}: cannot decode the contents: {err}"),
        }
    }
}

// No `source`, for the reason given at `DataError`: the message already
// carries the I/O error's own.
impl std::error::Error for FileError {}

/// The header of a payload of `len` bytes with CRC-32 `crc`.
fn header(kind: FileKind, len: u64, crc: u32) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(kind.magic());
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&len.to_le_bytes());
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Encodes `value` into the container format.
pub fn encode<T: Serialize>(kind: FileKind, value: &T) -> Vec<u8> {
    let payload = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("serde values of this crate always encode");
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&header(kind, payload.len() as u64, crc32fast::hash(&payload)));
    bytes.extend_from_slice(&payload);
    bytes
}

/// Passes bytes on while counting them and updating their CRC-32, so a
/// payload can be streamed to its file and its header filled in after.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Decodes a value from the container format; `path` only names the file
/// in errors.
///
/// # Errors
///
/// Fails if the magic, version, length or checksum is wrong, or the payload
/// does not decode as `T`.
pub fn decode<T: DeserializeOwned>(
    kind: FileKind,
    bytes: &[u8],
    path: &Path,
) -> Result<T, FileError> {
    let payload = checked_payload(kind, bytes, path)?;
    let (value, used) = decode_start(payload, path)?;
    if used != payload.len() {
        return Err(FileError {
            path: path.to_path_buf(),
            kind: FileErrorKind::Decode(format!("{} trailing bytes", payload.len() - used)),
        });
    }
    Ok(value)
}

/// Like [`decode`], but decodes only a leading part of the payload as `T`
/// and ignores the rest: how a reader looks at the version field that
/// opens a layout before it commits to decoding the whole of it.
///
/// # Errors
///
/// As [`decode`], but trailing bytes are no error.
pub fn decode_leading<T: DeserializeOwned>(
    kind: FileKind,
    bytes: &[u8],
    path: &Path,
) -> Result<T, FileError> {
    Ok(decode_start(checked_payload(kind, bytes, path)?, path)?.0)
}

/// The payload of a container whose magic, version, length and checksum
/// are right.
fn checked_payload<'b>(
    kind: FileKind,
    bytes: &'b [u8],
    path: &Path,
) -> Result<&'b [u8], FileError> {
    let error = |kind| FileError { path: path.to_path_buf(), kind };
    if bytes.len() < 8 || &bytes[..8] != kind.magic() {
        return Err(error(FileErrorKind::NotThisKind { expected: kind.name() }));
    }
    if bytes.len() < HEADER_LEN {
        return Err(error(FileErrorKind::Truncated {
            expected: HEADER_LEN as u64,
            found: bytes.len() as u64,
        }));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(error(FileErrorKind::UnsupportedVersion(version)));
    }
    let payload_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let checksum = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != payload_len {
        let expected = HEADER_LEN as u64 + payload_len;
        return Err(error(FileErrorKind::Truncated { expected, found: bytes.len() as u64 }));
    }
    if crc32fast::hash(payload) != checksum {
        return Err(error(FileErrorKind::Corrupted));
    }
    Ok(payload)
}

/// `T` decoded from the start of `payload`, and how many bytes it took.
fn decode_start<T: DeserializeOwned>(payload: &[u8], path: &Path) -> Result<(T, usize), FileError> {
    bincode::serde::decode_from_slice(payload, bincode::config::standard()).map_err(|err| {
        FileError { path: path.to_path_buf(), kind: FileErrorKind::Decode(err.to_string()) }
    })
}

/// Writes `value` to `path` atomically.
///
/// # Errors
///
/// Fails if the temporary file cannot be written, flushed or renamed.
///
/// The payload is streamed to the file as it is encoded, and the header
/// written over its placeholder at the end, so saving a large checkpoint
/// needs no copy of it in memory.
pub fn save<T: Serialize>(kind: FileKind, value: &T, path: &Path) -> Result<(), FileError> {
    let io = |err| FileError { path: path.to_path_buf(), kind: FileErrorKind::Io(err) };
    let mut file = AtomicFile::create(path).map_err(io)?;
    file.write_all(&[0u8; HEADER_LEN]).map_err(io)?;
    // bincode writes a few bytes at a time; the buffer in front of the
    // checksum hands it large blocks instead.
    let checksummed = Checksummed { inner: &mut file, crc: crc32fast::Hasher::new(), len: 0 };
    let mut sink = std::io::BufWriter::with_capacity(1 << 16, checksummed);
    bincode::serde::encode_into_std_write(value, &mut sink, bincode::config::standard()).map_err(
        |err| match err {
            bincode::error::EncodeError::Io { inner, .. } => io(inner),
            other => io(std::io::Error::other(other.to_string())),
        },
    )?;
    let sink = sink.into_inner().map_err(|err| io(err.into_error()))?;
    let (crc, len) = (sink.crc.finalize(), sink.len);
    file.overwrite_start(&header(kind, len, crc)).map_err(io)?;
    file.commit().map_err(io)
}

/// Reads a value written by [`save`].
///
/// # Errors
///
/// Fails if the file cannot be read or [`decode`] refuses it.
pub fn load<T: DeserializeOwned>(kind: FileKind, path: &Path) -> Result<T, FileError> {
    let bytes = std::fs::read(path)
        .map_err(|err| FileError { path: path.to_path_buf(), kind: FileErrorKind::Io(err) })?;
    decode(kind, &bytes, path)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk,
/// and renames it over `path`; on failure the temporary file is removed and
/// `path` is untouched. See [`AtomicFile`], which this is in one call, for
/// paths that are not regular files.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file written in pieces that appears at its path whole or not at all:
/// the bytes go to a temporary file beside it, and [`AtomicFile::commit`]
/// flushes, syncs and renames it into place. Dropped without a commit, the
/// temporary file is removed and whatever was at the path stays.
///
/// A path that already holds something other than a regular file, such as
/// `/dev/null`, a named pipe or a terminal, is written in place instead:
/// renaming over it would replace the device or pipe with a plain file
/// (and, run as root, break `/dev/null` for every other program).
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    /// The file being written, renamed to `path` on commit; `None` when
    /// `path` is written in place.
    temporary: Option<PathBuf>,
    writer: Option<std::io::BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing the file that will be at `path`.
    ///
    /// # Errors
    ///
    /// Fails if the temporary file (or the special file at `path`) cannot
    /// be opened.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let special = std::fs::metadata(path).is_ok_and(|meta| !meta.is_file());
        let (file, temporary) = if special {
            (std::fs::OpenOptions::new().write(true).open(path)?, None)
        } else {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let temporary = dir.join(format!(".{name}.tmp-{}", std::process::id()));
            (File::create(&temporary)?, Some(temporary))
        };
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temporary,
            writer: Some(std::io::BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// Writes `bytes` over the start of what was written so far, then goes
    /// on appending at the end.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be flushed, sought or written (a pipe
    /// cannot be sought).
    pub fn overwrite_start(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let writer = self.writer.as_mut().expect("an uncommitted file has its writer");
        writer.flush()?;
        let file = writer.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(bytes)?;
        file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Puts the finished file at its path.
    ///
    /// # Errors
    ///
    /// Fails if the data cannot be flushed, synced or renamed; the path
    /// then keeps its old contents.
    pub fn commit(mut self) -> std::io::Result<()> {
        let writer = self.writer.take().expect("an uncommitted file has its writer");
        let temporary = self.temporary.take();
        let result = (|| {
            let file = writer.into_inner().map_err(|err| err.into_error())?;
            let Some(temporary) = &temporary else { return Ok(()) };
            file.sync_all()?;
            std::fs::rename(temporary, &self.path)?;
            // Flushing the folder makes the rename itself durable; not
            // every platform lets a folder be opened, so failure here is
            // ignored.
            if let Some(dir) = self.path.parent()
                && let Ok(dir) =
                    File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir })
            {
                let _ = dir.sync_all();
            }
            Ok(())
        })();
        if result.is_err()
            && let Some(temporary) = &temporary
        {
            let _ = std::fs::remove_file(temporary);
        }
        result
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.as_mut().expect("an uncommitted file has its writer").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.as_mut().expect("an uncommitted file has its writer").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some()
            && let Some(temporary) = &self.temporary
        {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_kind_of_damage() {
        let scratch = tempfile::Builder::new().prefix("ferrochem-ckpt-").tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        let path = dir.join("state.bin");
        let value = (7u64, vec![1.5f32, -2.0], String::from("adam"));
        save(FileKind::Checkpoint, &value, &path).unwrap();
        assert_eq!(load::<(u64, Vec<f32>, String)>(FileKind::Checkpoint, &path).unwrap(), value);

        let bytes = std::fs::read(&path).unwrap();
        let check = |bytes: &[u8]| {
            decode::<(u64, Vec<f32>, String)>(FileKind::Checkpoint, bytes, &path)
                .unwrap_err()
                .to_string()
        };
        let message = format!(
            "state.bin: truncated: the header promises {} bytes, the file has {}",
            bytes.len(),
            bytes.len() - 3
        );
        assert!(
            check(&bytes[..bytes.len() - 3]).ends_with(&message),
            "{}",
            check(&bytes[..bytes.len() - 3])
        );
        assert!(check(&bytes[..10]).contains("truncated"));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(check(&flipped).contains("corrupted"));
        let mut version = bytes.clone();
        version[8] = 9;
        assert!(check(&version).contains("format version 9"));
        assert!(check(b"hello").contains("not a ferrochem checkpoint file"));
        assert!(
            decode::<u8>(FileKind::Model, &bytes, &path)
                .unwrap_err()
                .to_string()
                .contains("not a ferrochem model file")
        );
        let missing = load::<u8>(FileKind::Model, &dir.join("absent.bin")).unwrap_err();
        assert!(matches!(missing.kind(), FileErrorKind::Io(_)));
    }

    #[test]
    fn a_leading_field_decodes_alone_and_the_whole_value_must_use_every_byte() {
        let bytes = encode(FileKind::Model, &(4u32, String::from("members")));
        let path = Path::new("model.bin");
        assert_eq!(decode_leading::<u32>(FileKind::Model, &bytes, path).unwrap(), 4);
        let whole = decode::<u32>(FileKind::Model, &bytes, path).unwrap_err().to_string();
        assert!(whole.contains("trailing bytes"), "{whole}");
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let damaged = decode_leading::<u32>(FileKind::Model, &flipped, path).unwrap_err();
        assert!(matches!(damaged.kind(), FileErrorKind::Corrupted));
    }

    #[test]
    fn an_atomic_file_appears_only_when_committed() {
        let scratch = tempfile::Builder::new().prefix("ferrochem-atomic-").tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        let path = dir.join("out.csv");
        std::fs::write(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let mut file = AtomicFile::create(&path).unwrap();
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
    }

    /// A named pipe stands in for `/dev/null` and friends, which a test
    /// must not risk replacing.
    #[cfg(unix)]
    #[test]
    fn a_pipe_at_the_path_is_written_through_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let scratch = tempfile::Builder::new().prefix("ferrochem-atomic-").tempdir().unwrap();
        let pipe = scratch.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        if !made.is_ok_and(|status| status.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let reader = std::thread::spawn({
            let pipe = pipe.clone();
            move || std::fs::read(pipe).unwrap()
        });
        write_atomically(&pipe, b"through the pipe").unwrap();
        // Checked before joining: a pipe renamed over would leave the
        // reader waiting for ever.
        assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 1, "no temporary file");
    }
}
