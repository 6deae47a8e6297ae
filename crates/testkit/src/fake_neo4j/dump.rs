//! The Neo4j 5.3 dump format, as recorded: `DZV1`, then one zstd frame (XXH64 checksum,
//! 2 MiB window) holding a 24-byte header — `zstd`, u32 BE 1, i64 BE file count, i64 BE
//! byte count — and a PAX tar of the store files (with `atime`, `ctime`, `mtime`,
//! `LIBARCHIVE.creationtime` extended headers, directories included).

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// The four bytes every dump starts with.
pub const MAGIC: &[u8; 4] = b"DZV1";

/// What the 24-byte header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Regular files in the archive.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
}

/// Writes a dump of `files` (path relative to the store, content) to `out`.
pub fn write(out: &mut dyn Write, files: &[(String, Vec<u8>)], now: f64) -> io::Result<()> {
    out.write_all(MAGIC)?;
    let mut enc = zstd::stream::write::Encoder::new(out, 3)?;
    enc.include_checksum(true)?;
    enc.include_contentsize(false)?;
    enc.window_log(21)?;
    let bytes: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    enc.write_all(b"zstd")?;
    enc.write_all(&1u32.to_be_bytes())?;
    enc.write_all(&(files.len() as u64).to_be_bytes())?;
    enc.write_all(&bytes.to_be_bytes())?;
    {
        let mut tar = tar::Builder::new(&mut enc);
        let time = format!("{now:.7}");
        let pax = |tar: &mut tar::Builder<_>| {
            tar.append_pax_extensions([
                ("atime", time.as_bytes()),
                ("ctime", time.as_bytes()),
                ("mtime", time.as_bytes()),
                ("LIBARCHIVE.creationtime", time.as_bytes()),
            ])
        };
        let mut dirs: Vec<String> = vec!["./".into()];
        for (name, _) in files {
            let mut acc = String::from("./");
            let parts: Vec<&str> = name.trim_start_matches("./").split('/').collect();
            for p in &parts[..parts.len() - 1] {
                acc.push_str(p);
                acc.push('/');
                if !dirs.contains(&acc) {
                    dirs.push(acc.clone());
                }
            }
        }
        for d in &dirs {
            pax(&mut tar)?;
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(now as u64);
            tar.append_data(&mut h, d, io::empty())?;
        }
        for (name, data) in files {
            pax(&mut tar)?;
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(now as u64);
            let path = format!("./{}", name.trim_start_matches("./"));
            tar.append_data(&mut h, path, data.as_slice())?;
        }
        tar.finish()?;
    }
    enc.finish()?.flush()
}

/// Why reading a dump failed.
#[derive(Debug)]
pub enum DumpError {
    /// Not `DZV1`, or no readable header: "Not a valid Neo4j archive".
    NotValid,
    /// The zstd frame is not one ("Unknown frame descriptor"), for `load --info`.
    Frame(String),
    /// Ended early after the header ("ZstdIOException: Truncated source").
    Truncated,
    /// The tar inside is broken.
    Broken(String),
}

/// Counts what was read through it and hashes it.
struct Tee<R> {
    inner: R,
    hash: Sha256,
    count: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A file of a dump being read.
pub struct Entry<'a> {
    /// Path (`neostore`, `schema/index/...`).
    pub path: String,
    /// Its content.
    pub data: &'a [u8],
}

/// Reads the 24 header bytes from a decoder.
fn read_header(r: &mut dyn Read) -> Result<Header, DumpError> {
    let mut h = [0u8; 24];
    let mut got = 0;
    while got < 24 {
        match r.read(&mut h[got..]) {
            Ok(0) => return Err(DumpError::NotValid),
            Ok(n) => got += n,
            Err(_) => return Err(DumpError::NotValid),
        }
    }
    if &h[..4] != b"zstd" {
        return Err(DumpError::NotValid);
    }
    Ok(Header {
        files: u64::from_be_bytes(h[8..16].try_into().unwrap()),
        bytes: u64::from_be_bytes(h[16..24].try_into().unwrap()),
    })
}

/// Only the header (`load --info`): a stream without `DZV1` is read as a zstd frame
/// directly, as Neo4j does, and fails as its decoder fails.
pub fn read_header_only(input: &mut dyn Read) -> Result<Header, DumpError> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(DumpError::Frame(e.to_string())),
        }
    }
    let prefix: Vec<u8> = if &magic[..got] == MAGIC {
        Vec::new()
    } else {
        magic[..got].to_vec()
    };
    let chained = io::Cursor::new(prefix).chain(input);
    let mut dec =
        zstd::stream::read::Decoder::new(chained).map_err(|e| DumpError::Frame(e.to_string()))?;
    let mut h = [0u8; 24];
    let mut got = 0;
    while got < 24 {
        match dec.read(&mut h[got..]) {
            Ok(0) => return Err(DumpError::Frame("Truncated source".into())),
            Ok(n) => got += n,
            Err(e) => {
                let msg = e.to_string();
                return Err(DumpError::Frame(
                    if msg.contains("Unknown frame descriptor") || msg.contains("prefix") {
                        "Unknown frame descriptor".into()
                    } else {
                        msg
                    },
                ));
            }
        }
    }
    if &h[..4] != b"zstd" {
        return Err(DumpError::NotValid);
    }
    Ok(Header {
        files: u64::from_be_bytes(h[8..16].try_into().unwrap()),
        bytes: u64::from_be_bytes(h[16..24].try_into().unwrap()),
    })
}

/// What a complete read gave.
pub struct ReadDump {
    /// The header.
    pub header: Header,
    /// SHA-256 of the whole stream as read.
    pub sha256: String,
    /// Regular files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Reads a dump, calling `on_file` for each regular file; `on_header` once the header is
/// read (after which failures are truncations, not invalid archives).
pub fn read(
    input: &mut dyn Read,
    on_header: &mut dyn FnMut(&Header),
    on_file: &mut dyn FnMut(&Header, Entry) -> io::Result<()>,
) -> Result<ReadDump, (DumpError, Option<Header>)> {
    let mut tee = Tee {
        inner: input,
        hash: Sha256::new(),
        count: 0,
    };
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match tee.read(&mut magic[got..]) {
            Ok(0) => return Err((DumpError::NotValid, None)),
            Ok(n) => got += n,
            Err(_) => return Err((DumpError::NotValid, None)),
        }
    }
    if &magic != MAGIC {
        return Err((DumpError::NotValid, None));
    }
    let header;
    let mut files = 0;
    let mut bytes = 0;
    {
        let mut dec =
            zstd::stream::read::Decoder::new(&mut tee).map_err(|_| (DumpError::NotValid, None))?;
        header = read_header(&mut dec).map_err(|e| (e, None))?;
        on_header(&header);
        let mut archive = tar::Archive::new(&mut dec);
        let entries = archive
            .entries()
            .map_err(|e| (classify(&e), Some(header)))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| (classify(&e), Some(header)))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| (classify(&e), Some(header)))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            if path.split('/').any(|p| p == "..") || path.starts_with('/') {
                return Err((DumpError::Broken(format!("bad path {path}")), Some(header)));
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| (classify(&e), Some(header)))?;
            files += 1;
            bytes += data.len() as u64;
            on_file(&header, Entry { path, data: &data })
                .map_err(|e| (DumpError::Broken(e.to_string()), Some(header)))?;
        }
        // Drain the frame so that its checksum is verified.
        let mut rest = Vec::new();
        dec.read_to_end(&mut rest)
            .map_err(|e| (classify(&e), Some(header)))?;
    }
    Ok(ReadDump {
        header,
        sha256: format!("{:x}", tee.hash.finalize()),
        files,
        bytes,
    })
}

fn classify(e: &io::Error) -> DumpError {
    let m = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof
        || m.contains("incomplete")
        || m.contains("unexpected end")
        || m.contains("failed to fill whole buffer")
    {
        DumpError::Truncated
    } else {
        DumpError::Broken(m)
    }
}

/// `3.670MiB`, `8.000KiB`, `1016KiB`: four significant digits, as Neo4j's progress prints
/// byte counts.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    format!("{v:.digits$}{}", units[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_real_fixture_header() {
        let files = vec![
            ("neostore".to_owned(), b"x".to_vec()),
            ("graph.json".to_owned(), b"{}".to_vec()),
        ];
        let mut out = Vec::new();
        write(&mut out, &files, 1_795_688_255.9).unwrap();
        assert_eq!(&out[..4], MAGIC);
        let mut seen = Vec::new();
        let r = read(&mut out.as_slice(), &mut |_| {}, &mut |_, e| {
            seen.push((e.path, e.data.to_vec()));
            Ok(())
        })
        .map_err(|e| format!("{:?}", e.0))
        .unwrap();
        assert_eq!(r.header, Header { files: 2, bytes: 3 });
        assert_eq!(seen, files);
        let fixture = std::fs::read(crate::replay::reference_path(
            "neo4j-5.3/fixtures/neo4j.dump",
        ))
        .unwrap();
        let h = read_header_only(&mut fixture.as_slice()).unwrap();
        assert_eq!(
            h,
            Header {
                files: 38,
                bytes: 3_848_679
            }
        );
        assert!(
            matches!(read_header_only(&mut &b"this is not a neo4j dump\n"[..]), Err(DumpError::Frame(m)) if m == "Unknown frame descriptor")
        );
        assert_eq!(human_bytes(3_848_679), "3.670MiB");
        assert_eq!(human_bytes(8192), "8.000KiB");
        assert_eq!(human_bytes(72 * 1024), "72.00KiB");
        assert_eq!(human_bytes(1016 * 1024), "1016KiB");
        assert_eq!(human_bytes(136 * 1024), "136.0KiB");
    }
}
