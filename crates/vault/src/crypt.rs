//! Encryption at rest with [age](https://age-encryption.org/v1) (the `age` crate, rage):
//! artifacts are encrypted to X25519 recipients while they stream into the vault, so the
//! backup host holds **no secret** that can read its own backups, and decrypted while they
//! stream out with an identity (the private key) that lives elsewhere.
//!
//! - [`Recipients`]: the public keys (`age1…`, one a line, `#` comments), from
//!   `--encrypt-to FILE`; [`Identities`]: the private keys (`AGE-SECRET-KEY-1…`), from
//!   `--identity FILE`. Both are known in messages and manifests by [`fingerprint`]s only.
//! - [`Sealing`]: a reader that encrypts its source as it is read — a sequential producer
//!   feeding the upload's part pool (age's STREAM is sequential) — and checks the plaintext
//!   against what its record says before it lets the last bytes go, so a source that
//!   changed never becomes a complete object. [`sealed_len`] is the exact ciphertext size.
//! - [`open`]: decrypts a ciphertext stream into a writer, in order.
//!
//! The object stays a standard age file: `age -d -i key.txt` decrypts it with nothing of
//! stackvault's (the break-glass procedure in the README; a test proves it with Debian's
//! `age`).

use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use age::secrecy::ExposeSecret;
use age::x25519;
use manifest::sha256::Hasher;
use manifest::Sha256;
use toolkit::cli::quote;

use crate::error::{Error, ErrorKind, Result};
use crate::expect::AtEndAnswer;

/// The `vault.encryption.scheme` of age-encrypted objects.
pub const SCHEME: &str = "age";

/// Appended to an encrypted artifact's key (`….dump.age`): whoever lists the bucket sees
/// what the object is, and what opens it.
pub const SUFFIX: &str = ".age";

/// age's STREAM chunk: 64 KiB of plaintext, each sealed with a 16-byte tag.
const CHUNK: u64 = 64 * 1024;
const TAG: u64 = 16;

/// How much plaintext one refill of a [`Sealing`] reads.
const BLOCK: usize = 1 << 20;

/// The fingerprint a recipient is known by: the first 16 hex digits of the SHA-256 of its
/// `age1…` text. Reproducible by hand: `printf %s age1… | sha256sum | cut -c1-16`, or for
/// an identity `age-keygen -y key.txt | tr -d '\n' | sha256sum | cut -c1-16`.
pub fn fingerprint(recipient: &x25519::Recipient) -> String {
    Sha256::of(recipient.to_string().as_bytes()).to_string()[..16].to_owned()
}

/// The lines of a key file that hold something: without comments and blanks, with their
/// line numbers.
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn read_key_file(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read the {what} file {}", quote(path)), e))
}

/// The public keys artifacts are encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<x25519::Recipient>,
}

impl Recipients {
    /// Reads a recipients file: X25519 public keys (`age1…`), one a line; blank lines and
    /// `#` comments allowed, as `age -R` takes them.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_key_file(path, "recipients")?;
        Self::parse(&text).map_err(|e| e.append(&format!(" (in {})", quote(path))))
    }

    /// Parses the text of a recipients file. A secret key in it is refused without being
    /// echoed: the backup host must not hold one.
    pub fn parse(text: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for (n, line) in key_lines(text) {
            if line.starts_with("AGE-SECRET-KEY-") {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "line {n} is a secret key, not a recipient: the backup host must not \
                         hold it; put its public key there (age-keygen -y FILE) and keep the \
                         secret key away from this host"
                    ),
                ));
            }
            let key = x25519::Recipient::from_str(line).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "line {n} is not an age X25519 recipient (expected age1… as \
                         age-keygen prints it)"
                    ),
                )
            })?;
            if !keys
                .iter()
                .any(|k: &x25519::Recipient| k.to_string() == key.to_string())
            {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "no recipient: the file lists no age1… public key",
            ));
        }
        Ok(Recipients { keys })
    }

    /// The recipients' fingerprints, in file order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(fingerprint).collect()
    }
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Recipients")
            .field(&self.fingerprints())
            .finish()
    }
}

/// The private keys backups are decrypted with. Never printed: known by the fingerprints
/// of their public keys.
pub struct Identities {
    keys: Vec<x25519::Identity>,
    origin: String,
}

impl Identities {
    /// Reads an identity file as `age-keygen` writes it: `AGE-SECRET-KEY-1…` lines, blank
    /// lines and `#` comments. A bad line is named by its number, never shown.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_key_file(path, "identity")?;
        let mut keys = Vec::new();
        for (n, line) in key_lines(&text) {
            let key = x25519::Identity::from_str(line).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "line {n} of the identity file {} is not an age X25519 identity \
                         (expected AGE-SECRET-KEY-1… as age-keygen writes it)",
                        quote(path)
                    ),
                )
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the identity file {} holds no key", quote(path)),
            ));
        }
        Ok(Identities {
            keys,
            origin: quote(path),
        })
    }

    /// The fingerprints of the identities' public keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint(&k.to_public()))
            .collect()
    }

    /// Where they came from, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether one of them is among `recipients` (fingerprints).
    pub fn opens(&self, recipients: &[String]) -> bool {
        self.fingerprints().iter().any(|f| recipients.contains(f))
    }
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Identities")
            .field(&self.fingerprints())
            .finish()
    }
}

/// The exact size of the age file of a plaintext of `plain` bytes whose header (and
/// payload nonce) took `header` bytes: each 64 KiB chunk gains a 16-byte tag, and an empty
/// plaintext is one empty chunk.
pub fn sealed_len(header: u64, plain: u64) -> u64 {
    header + plain + TAG * plain.div_ceil(CHUNK).max(1)
}

/// What the plaintext of a [`Sealing`] must turn out to be.
#[derive(Clone, Copy)]
pub enum PlainCheck<'a> {
    /// Exactly this size and digest (a complete spool file and its manifest).
    Exact(u64, Sha256),
    /// Known at its end (a file still being written, and its producer's final record).
    AtEnd(&'a (dyn Fn() -> AtEndAnswer + Sync)),
}

/// The ciphertext sink of the age stream writer: a buffer the reader drains.
#[derive(Default)]
struct Out(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Out {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader of the age encryption of `src`. Reading it reads `src` a block at a time,
/// hashes the plaintext, encrypts it, and gives the ciphertext out; at the end of `src` the
/// plaintext is checked (`PlainCheck`) **before** the final chunk is given out, so a put
/// that reads this to its end stores nothing when the source was not what it should be.
pub struct Sealing<'a, R> {
    src: R,
    check: PlainCheck<'a>,
    writer: Option<age::stream::StreamWriter<Out>>,
    out: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    pos: usize,
    block: Vec<u8>,
    hasher: Option<Hasher>,
    header: u64,
    plain: Option<(u64, Sha256)>,
    refused: Option<String>,
    /// Hashes the ciphertext given out, for [`Sealing::publishing`].
    sealed: Option<(Hasher, &'a OnceLock<(u64, Sha256)>)>,
}

impl<'a, R: Read> Sealing<'a, R> {
    /// Starts encrypting `src` to `recipients`.
    pub fn new(src: R, recipients: &Recipients, check: PlainCheck<'a>) -> Result<Self> {
        let encryptor = age::Encryptor::with_recipients(
            recipients.keys.iter().map(|k| k as &dyn age::Recipient),
        )
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot encrypt: {e}")))?;
        let out = Out::default();
        let buffer = out.0.clone();
        let writer = encryptor
            .wrap_output(out)
            .map_err(|e| Error::io("cannot start encrypting", e))?;
        // wrap_output has written the header and the payload nonce: their size is known
        // now, and with it the size of the whole file.
        let header = buffer.borrow().len() as u64;
        Ok(Sealing {
            src,
            check,
            writer: Some(writer),
            out: buffer,
            pos: 0,
            block: vec![0; BLOCK],
            hasher: Some(Hasher::new()),
            header,
            plain: None,
            refused: None,
            sealed: None,
        })
    }

    /// Also hashes the ciphertext as it is given out, and sets `cell` to its size and
    /// SHA-256 when the last byte went out: what a put of a source known only at its end
    /// ([`Expect::AtEnd`](crate::Expect::AtEnd)) checks the ciphertext against. Only then:
    /// a put of known length needs no second hash.
    pub fn publishing(mut self, cell: &'a OnceLock<(u64, Sha256)>) -> Self {
        self.sealed = Some((Hasher::new(), cell));
        self
    }

    /// The size of the ciphertext of a plaintext of `plain` bytes.
    pub fn sealed_len(&self, plain: u64) -> u64 {
        sealed_len(self.header, plain)
    }

    /// Size and SHA-256 of the plaintext, once it was read to its end and accepted.
    pub fn plaintext(&self) -> Option<(u64, Sha256)> {
        self.plain
    }

    /// Why the plaintext was refused, if it was: the put that read this failed because of
    /// it, and nothing was stored.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    fn refuse(&mut self, why: String) -> io::Error {
        self.refused = Some(why.clone());
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    /// Reads the next block of plaintext and encrypts it; at the end, checks the plaintext
    /// and seals the last chunk.
    fn refill(&mut self) -> io::Result<()> {
        let n = loop {
            match self.src.read(&mut self.block) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let hasher = self.hasher.as_mut().expect("not at the end yet");
        if n > 0 {
            hasher.update(&self.block[..n]);
            if let PlainCheck::Exact(bytes, _) = self.check {
                if hasher.bytes() > bytes {
                    let why = format!(
                        "the source is longer than the {bytes} bytes its manifest says: it \
                         changed while it was read"
                    );
                    return Err(self.refuse(why));
                }
            }
            let writer = self.writer.as_mut().expect("not finished");
            return writer.write_all(&self.block[..n]);
        }
        let (bytes, sha256) = self.hasher.take().expect("once").finish();
        let want = match self.check {
            PlainCheck::Exact(bytes, sha256) => Ok((bytes, sha256)),
            PlainCheck::AtEnd(at_end) => at_end(),
        };
        match want {
            Err(why) => return Err(self.refuse(why)),
            Ok((want_bytes, _)) if want_bytes != bytes => {
                let why =
                    format!("the source ended after {bytes} bytes, but {want_bytes} were expected");
                return Err(self.refuse(why));
            }
            Ok((_, want_sha)) if want_sha != sha256 => {
                let why = format!(
                    "the source changed while it was read: its SHA-256 is {sha256}, expected \
                     {want_sha}"
                );
                return Err(self.refuse(why));
            }
            Ok(_) => {}
        }
        self.plain = Some((bytes, sha256));
        self.writer.take().expect("finished once").finish()?;
        Ok(())
    }
}

impl<R: Read> Read for Sealing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Refused once, refused for good: never an end that looks clean.
        if let Some(why) = &self.refused {
            return Err(io::Error::new(io::ErrorKind::InvalidData, why.clone()));
        }
        loop {
            {
                let out = self.out.borrow();
                if self.pos < out.len() {
                    let n = buf.len().min(out.len() - self.pos);
                    buf[..n].copy_from_slice(&out[self.pos..self.pos + n]);
                    if let Some((hasher, _)) = &mut self.sealed {
                        hasher.update(&buf[..n]);
                    }
                    self.pos += n;
                    return Ok(n);
                }
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if self.writer.is_none() {
                if let Some((hasher, cell)) = self.sealed.take() {
                    let _ = cell.set(hasher.finish());
                }
                return Ok(0);
            }
            self.out.borrow_mut().clear();
            self.pos = 0;
            self.refill()?;
        }
    }
}

/// Why [`open`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// None of the identities is a recipient of the file.
    NotARecipient,
    /// The ciphertext is not a well-formed age file, or fails authentication (truncated,
    /// changed): what was written to `dst` must be thrown away.
    Damaged(String),
    /// Reading the ciphertext or writing the plaintext failed.
    Io(io::Error),
}

/// Decrypts the age file `src` with `identities` into `dst`, in order. Each 64 KiB chunk is
/// authenticated before it is written, and a truncated file fails at its end; on any error
/// the caller must discard what `dst` got.
pub fn open(
    src: &mut dyn Read,
    identities: &Identities,
    dst: &mut dyn Write,
) -> std::result::Result<u64, OpenError> {
    let damaged = |e: age::DecryptError| match e {
        age::DecryptError::NoMatchingKeys => OpenError::NotARecipient,
        age::DecryptError::Io(e) => OpenError::Io(e),
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            OpenError::Damaged("it is not an age file (bad header)".into())
        }
        age::DecryptError::InvalidMac => {
            OpenError::Damaged("its header fails authentication (changed)".into())
        }
        other => OpenError::Damaged(format!("{other:?}")),
    };
    let decryptor = age::Decryptor::new(src).map_err(damaged)?;
    let mut reader = decryptor
        .decrypt(identities.keys.iter().map(|k| k as &dyn age::Identity))
        .map_err(damaged)?;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // age reports a failed chunk tag and a missing last chunk as InvalidData /
            // UnexpectedEof; anything else is the transport's (a pipe whose writer stopped
            // says ConnectionAborted: the download's own error explains it).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(OpenError::Damaged(format!(
                    "its payload fails authentication after {total} bytes of plaintext: it \
                     is truncated or changed ({e})"
                )))
            }
            Err(e) => return Err(OpenError::Io(e)),
        };
        dst.write_all(&buf[..n]).map_err(OpenError::Io)?;
        total += n as u64;
        toolkit::interrupt::check().map_err(|_| {
            OpenError::Io(io::Error::new(
                io::ErrorKind::Interrupted,
                "stopped by a signal",
            ))
        })?;
    }
}

/// Generates a fresh identity and its recipient (tests, and the fixtures of others).
pub fn generate() -> (String, String) {
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    (identity.to_string().expose_secret().to_owned(), recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> (Vec<String>, Recipients) {
        let pairs: Vec<_> = (0..n).map(|_| generate()).collect();
        let text: String = pairs
            .iter()
            .map(|(_, r)| format!("# key\n{r}\n\n"))
            .collect();
        (
            pairs.into_iter().map(|(i, _)| i).collect(),
            Recipients::parse(&text).unwrap(),
        )
    }

    fn identities(secret: &str) -> Identities {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        std::fs::write(&path, format!("# created: now\n{secret}\n")).unwrap();
        Identities::from_file(&path).unwrap()
    }

    #[test]
    fn sealed_size_is_exact_and_opens_with_any_recipient() {
        let (secrets, recipients) = keys(2);
        for len in [0usize, 1, 65_535, 65_536, 65_537, 3 * BLOCK + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let check = PlainCheck::Exact(len as u64, Sha256::of(&data));
            let mut sealing = Sealing::new(&data[..], &recipients, check).unwrap();
            let want = sealing.sealed_len(len as u64);
            let mut sealed = Vec::new();
            sealing.read_to_end(&mut sealed).unwrap();
            assert_eq!(sealed.len() as u64, want, "len {len}");
            assert_eq!(sealing.plaintext(), Some((len as u64, Sha256::of(&data))));
            for secret in &secrets {
                let mut back = Vec::new();
                open(&mut &sealed[..], &identities(secret), &mut back).unwrap();
                assert!(back == data, "len {len}");
            }
        }
    }

    #[test]
    fn a_source_that_is_not_what_its_record_says_never_yields_its_last_chunk() {
        let (_, recipients) = keys(1);
        let data = vec![7u8; 200_000];
        let sha = Sha256::of(&data);
        let failed = || Err("the dump failed".to_owned());
        let right = || Ok((200_000, Sha256::of(&[7u8; 200_000])));
        // (what the record says, refused)
        let cases: [(PlainCheck, bool); 6] = [
            (PlainCheck::Exact(200_000, sha), false),
            (PlainCheck::Exact(199_999, sha), true),
            (PlainCheck::Exact(200_001, sha), true),
            (PlainCheck::Exact(200_000, Sha256::of(b"x")), true),
            (PlainCheck::AtEnd(&right), false),
            (PlainCheck::AtEnd(&failed), true),
        ];
        for (i, (check, refused)) in cases.into_iter().enumerate() {
            let mut sealing = Sealing::new(&data[..], &recipients, check).unwrap();
            let mut sealed = Vec::new();
            let result = sealing.read_to_end(&mut sealed);
            assert_eq!(result.is_err(), refused, "case {i}");
            assert_eq!(sealing.refused().is_some(), refused, "case {i}");
            if refused {
                assert!(
                    sealed.len() < sealing.sealed_len(200_000) as usize,
                    "case {i}"
                );
            }
        }
    }

    #[test]
    fn a_wrong_key_a_cut_and_a_flipped_byte_are_told_apart() {
        let (secrets, recipients) = keys(1);
        let (other, _) = generate();
        let data = vec![3u8; 300_000];
        let mut sealing = Sealing::new(
            &data[..],
            &recipients,
            PlainCheck::Exact(300_000, Sha256::of(&data)),
        )
        .unwrap();
        let mut sealed = Vec::new();
        sealing.read_to_end(&mut sealed).unwrap();
        let mine = identities(&secrets[0]);
        let mut flipped = sealed.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 1;
        let cut = &sealed[..sealed.len() - 100];
        let cut_on_chunk = &sealed[..sealed.len() - (300_000 % 65_536 + 16)];
        // (ciphertext, identity, expected outcome)
        let cases: [(&[u8], &Identities, &str); 5] = [
            (&sealed, &mine, "ok"),
            (&sealed, &identities(&other), "not a recipient"),
            (&flipped, &mine, "damaged"),
            (cut, &mine, "damaged"),
            (cut_on_chunk, &mine, "damaged"),
        ];
        for (i, (src, ids, want)) in cases.into_iter().enumerate() {
            let got = match open(&mut &src[..], ids, &mut Vec::new()) {
                Ok(_) => "ok",
                Err(OpenError::NotARecipient) => "not a recipient",
                Err(OpenError::Damaged(_)) => "damaged",
                Err(OpenError::Io(e)) => panic!("case {i}: {e}"),
            };
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn key_files_are_checked_line_by_line_and_secrets_never_echoed() {
        let (secret, recipient) = generate();
        // (recipients file text, error containing)
        let cases = [
            (format!("{recipient}\n{recipient}\n"), None),
            ("# only a comment\n\n".to_owned(), Some("no recipient")),
            (
                format!("{recipient}\nnot-a-key\n"),
                Some("line 2 is not an age X25519"),
            ),
            (format!("{secret}\n"), Some("line 1 is a secret key")),
        ];
        for (text, want) in cases {
            match (Recipients::parse(&text), want) {
                (Ok(r), None) => assert_eq!(r.fingerprints().len(), 1, "duplicates folded"),
                (Err(e), Some(want)) => {
                    let shown = e.to_string();
                    assert!(shown.contains(want), "{shown}");
                    assert!(!shown.contains("AGE-SECRET"), "{shown}");
                }
                (got, want) => panic!("{text:?}: {got:?}, wanted {want:?}"),
            }
        }
        let ids = identities(&secret);
        let fp = Recipients::parse(&recipient).unwrap().fingerprints();
        assert_eq!(
            ids.fingerprints(),
            fp,
            "an identity is known by its recipient's fingerprint"
        );
        assert!(ids.opens(&fp));
        assert!(!format!("{ids:?}").contains("AGE-SECRET"));
        assert_eq!(fp[0].len(), 16);
    }
}
